/* acpi_pm.c — ACPI PM1 registers, PM timer, SMI command port, reset paths, a
 * device-less i8042 and the POST port; see acpi_pm.h.
 *
 * The PM timer is pure arithmetic on host CLOCK_MONOTONIC and takes no lock: it is
 * Linux's clocksource watchdog reference and is read often. Its status bit
 * (TMR_STS, set whenever bit 23 flips) is computed when PM1_STS is read; a host
 * timer exists only to raise the SCI for it when the OS enabled TMR_EN. */
#include "devices/acpi_pm.h"

#include <string.h>

#define STS_W1C                                                                                    \
    (ACPI_PM1_TMR | ACPI_PM1_BM | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN |               \
     ACPI_PM1_RTC | 0x4000 | ACPI_PM1_WAK)
#define EN_MASK                                                                                    \
    (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC | 0x4000)
#define SCI_EVENTS (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
#define CNT_STORED (ACPI_PM1_SCI_EN | 0x0002 /* BM_RLD */ | 0x1C00 /* SLP_TYP */)
#define TMR_MASK   ((1u << ACPI_PM_TMR_BITS) - 1)

/* what a register access asks for once the lock is dropped */
#define ACT_POWER_OFF 1
#define ACT_RESET     2

/* i8042 status bits */
#define KBC_OBF      0x01
#define KBC_SYS      0x04
#define KBC_CMD      0x08
#define KBC_UNLOCKED 0x10
#define KBC_AUX      0x20

static uint64_t tmr_ticks(const struct acpi_pm *pm)
{
    uint64_t ns = clock_ns() - pm->tmr_base_ns;
    return (uint64_t)((unsigned __int128)ns * ACPI_PM_TMR_FREQ / 1000000000ull);
}

uint32_t acpi_pm_timer(const struct acpi_pm *pm)
{
    return (uint32_t)tmr_ticks(pm) & TMR_MASK;
}

/* Folds bit-23 transitions since the last look into TMR_STS. Lock held. */
static void tmr_catch_up(struct acpi_pm *pm)
{
    uint64_t carries = tmr_ticks(pm) >> (ACPI_PM_TMR_BITS - 1);
    if (carries != pm->tmr_carries) {
        pm->tmr_carries = carries;
        pm->sts |= ACPI_PM1_TMR;
    }
}

/* Drives the SCI on change and keeps the carry timer armed only while it could
 * raise the SCI. Lock held. */
static void update_sci(struct acpi_pm *pm)
{
    bool level = (pm->cnt & ACPI_PM1_SCI_EN) && (pm->sts & pm->en & SCI_EVENTS);
    if (level != pm->sci_level) {
        pm->sci_level = level;
        irq_set(&pm->sci, level);
    }
    if (!pm->ts) return;
    if ((pm->cnt & ACPI_PM1_SCI_EN) && (pm->en & ACPI_PM1_TMR) && !(pm->sts & ACPI_PM1_TMR)) {
        uint64_t next = (pm->tmr_carries + 1) << (ACPI_PM_TMR_BITS - 1);
        uint64_t ns = (uint64_t)(((unsigned __int128)next * 1000000000ull + ACPI_PM_TMR_FREQ - 1) /
                                 ACPI_PM_TMR_FREQ);
        timer_mod(pm->ts, &pm->tmr_timer, pm->tmr_base_ns + ns);
    } else {
        timer_del(pm->ts, &pm->tmr_timer);
    }
}

static void tmr_fire(void *opaque)
{
    struct acpi_pm *pm = opaque;
    pthread_mutex_lock(&pm->lock);
    tmr_catch_up(pm);
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

static void run_actions(struct acpi_pm *pm, int act)
{
    if ((act & ACT_RESET) && pm->reset)
        pm->reset(pm->opaque);
    else if ((act & ACT_POWER_OFF) && pm->power_off)
        pm->power_off(pm->opaque);
}

/* --- PM1a event block: PM1_STS at +0, PM1_EN at +2 --- */

static uint64_t evt_read(void *dev, uint64_t offset, int size)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    tmr_catch_up(pm);
    uint32_t image = pm->sts | (uint32_t)pm->en << 16;
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    return (image >> (8 * offset)) & (size >= 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1);
}

static void evt_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    tmr_catch_up(pm); /* a carry before this write is cleared by it, not reported later */
    for (int i = 0; i < size && offset + i < 4; i++) {
        unsigned byte = (unsigned)(offset + i);
        uint16_t b = (uint8_t)(value >> (8 * i));
        if (byte < 2)
            pm->sts &= ~((b << (8 * byte)) & STS_W1C);
        else
            pm->en = (uint16_t)((pm->en & ~(0xFF << (8 * (byte - 2)))) |
                                ((b << (8 * (byte - 2))) & EN_MASK));
    }
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

static const struct io_ops evt_ops = {.read = evt_read, .write = evt_write};

/* --- PM1a control --- */

static uint64_t cnt_read(void *dev, uint64_t offset, int size)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    uint16_t v = pm->cnt;
    pthread_mutex_unlock(&pm->lock);
    return (v >> (8 * offset)) & (size == 1 ? 0xFF : 0xFFFF);
}

static void cnt_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct acpi_pm *pm = dev;
    int act = 0;
    pthread_mutex_lock(&pm->lock);
    uint16_t v = pm->cnt;
    for (int i = 0; i < size && offset + i < 2; i++) {
        unsigned sh = 8 * (unsigned)(offset + i);
        v = (uint16_t)((v & ~(0xFF << sh)) | (((value >> (8 * i)) & 0xFF) << sh));
    }
    pm->cnt = v & CNT_STORED; /* SLP_EN and GBL_RLS are write-only strobes */
    if (v & ACPI_PM1_SLP_EN) {
        if (((v >> ACPI_PM1_SLP_TYP_SHIFT) & 7) == ACPI_SLP_TYP_S5)
            act = ACT_POWER_OFF;
        else
            pm->sts |= ACPI_PM1_WAK; /* other sleep states: "wake" at once */
    }
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    run_actions(pm, act);
}

static const struct io_ops cnt_ops = {.read = cnt_read, .write = cnt_write};

/* --- PM timer (read-only, lock-free) --- */

static uint64_t tmr_read(void *dev, uint64_t offset, int size)
{
    uint32_t v = acpi_pm_timer(dev);
    return (v >> (8 * offset)) & (size >= 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1);
}

static const struct io_ops tmr_ops = {.read = tmr_read, .write = NULL};

/* --- SMI command port: the OS asks "firmware" to enter or leave ACPI mode --- */

static uint64_t smi_read(void *dev, uint64_t offset, int size)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    uint8_t v = pm->smi_cmd;
    pthread_mutex_unlock(&pm->lock);
    return v;
}

static void smi_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    pm->smi_cmd = (uint8_t)value;
    if (pm->smi_cmd == ACPI_ENABLE_VALUE)
        pm->cnt |= ACPI_PM1_SCI_EN;
    else if (pm->smi_cmd == ACPI_DISABLE_VALUE)
        pm->cnt &= ~ACPI_PM1_SCI_EN;
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

static const struct io_ops smi_ops = {.read = smi_read, .write = smi_write};

/* --- reset control register 0xCF9: bit 1 hard/soft, bit 2 reset CPU, bit 3 full --- */

static uint64_t rcr_read(void *dev, uint64_t offset, int size)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    uint8_t v = pm->rcr;
    pthread_mutex_unlock(&pm->lock);
    return v;
}

static void rcr_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    pm->rcr = value & 0x0A;    /* RST_CPU (bit 2) is a strobe and reads 0 */
    bool reset = value & 0x04; /* Linux writes 0x02 then 0x06 (or 0x0E) */
    pthread_mutex_unlock(&pm->lock);
    if (reset) run_actions(pm, ACT_RESET);
}

const struct io_ops acpi_pm_rcr_ops = {.read = rcr_read, .write = rcr_write};

/* --- i8042 without keyboard or mouse --- */

static void kbc_output(struct acpi_pm *pm, uint8_t v, bool aux)
{
    pm->kbc_obuf = v;
    pm->kbc_obf = true;
    pm->kbc_status_extra = aux ? KBC_AUX : 0;
}

static uint64_t kbc_access_read(struct acpi_pm *pm, bool status)
{
    uint8_t v;
    pthread_mutex_lock(&pm->lock);
    if (!status) { /* 0x60 data */
        v = pm->kbc_obuf;
        pm->kbc_obf = false;
        pm->kbc_status_extra = 0;
    } else { /* 0x64 status: input buffer always empty (IBF=0), unlocked */
        v = (pm->kbc_obf ? KBC_OBF : 0) | pm->kbc_status_extra | (pm->kbc_ctr & KBC_SYS) |
            (pm->kbc_last_cmd ? KBC_CMD : 0) | KBC_UNLOCKED;
    }
    pthread_mutex_unlock(&pm->lock);
    return v;
}

static int kbc_command(struct acpi_pm *pm, uint8_t c)
{
    switch (c) {
    case 0x20: kbc_output(pm, pm->kbc_ctr, false); break; /* read command byte */
    case 0x60:
    case 0xD1:
    case 0xD2:
    case 0xD3:
    case 0xD4: /* take a data byte */ pm->kbc_pending = c; break;
    case 0xA7: pm->kbc_ctr |= 0x20; break;  /* disable aux */
    case 0xA8: pm->kbc_ctr &= ~0x20; break; /* enable aux */
    case 0xAD: pm->kbc_ctr |= 0x10; break;  /* disable keyboard */
    case 0xAE: pm->kbc_ctr &= ~0x10; break; /* enable keyboard */
    case 0xAA:
        pm->kbc_ctr |= KBC_SYS;
        kbc_output(pm, 0x55, false);
        break; /* self-test ok */
    case 0xA9:
    case 0xAB: kbc_output(pm, 0x00, false); break;            /* interface tests ok */
    case 0xC0: kbc_output(pm, 0x00, false); break;            /* input port */
    case 0xD0: kbc_output(pm, pm->kbc_outport, false); break; /* read output port */
    default:
        if (c >= 0xF0 && !(c & 1))
            return ACT_RESET; /* pulse output port bit 0: the CPU reset line (0xFE) */
        break;
    }
    return 0;
}

static void kbc_access_write(struct acpi_pm *pm, bool command, uint8_t v)
{
    int act = 0;
    pthread_mutex_lock(&pm->lock);
    pm->kbc_last_cmd = command;
    if (command) {
        pm->kbc_pending = 0;
        act = kbc_command(pm, v);
    } else {
        switch (pm->kbc_pending) {
        case 0x60: pm->kbc_ctr = v; break;
        case 0xD1:
            pm->kbc_outport = v;
            if (!(v & 1)) act = ACT_RESET; /* output port bit 0 low holds the CPU in reset */
            break;
        case 0xD2: kbc_output(pm, v, false); break; /* echo as keyboard data */
        case 0xD3: kbc_output(pm, v, true); break;  /* echo as mouse data */
        default: break; /* bytes for a keyboard or mouse that is not there */
        }
        pm->kbc_pending = 0;
    }
    pthread_mutex_unlock(&pm->lock);
    run_actions(pm, act);
}

static uint64_t kbc_data_read(void *dev, uint64_t offset, int size)
{
    return kbc_access_read(dev, false);
}
static uint64_t kbc_status_read(void *dev, uint64_t offset, int size)
{
    return kbc_access_read(dev, true);
}
static void kbc_data_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    kbc_access_write(dev, false, (uint8_t)value);
}
static void kbc_cmd_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    kbc_access_write(dev, true, (uint8_t)value);
}

static const struct io_ops kbc_data_ops = {.read = kbc_data_read, .write = kbc_data_write};
static const struct io_ops kbc_cmd_ops = {.read = kbc_status_read, .write = kbc_cmd_write};

/* --- POST code port: Linux's outb_p() delay writes here; must stay cheap --- */

static uint64_t post_read(void *dev, uint64_t offset, int size)
{
    return 0xFF;
}

static void post_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct acpi_pm *pm = dev;
    atomic_store_explicit(&pm->post_code, (uint8_t)value, memory_order_relaxed);
}

static const struct io_ops post_ops = {.read = post_read, .write = post_write};

/* --- life cycle --- */

static void reset_locked(struct acpi_pm *pm)
{
    tmr_catch_up(pm);
    pm->sts = pm->en = pm->cnt = 0;
    pm->rcr = pm->smi_cmd = 0;
    pm->kbc_ctr = KBC_SYS | 0x40; /* self-tested, scan-code translation, no interrupts */
    pm->kbc_outport = 0x03;       /* reset line inactive, A20 on */
    pm->kbc_obf = false;
    pm->kbc_last_cmd = true;
    pm->kbc_pending = pm->kbc_status_extra = 0;
    update_sci(pm);
}

void acpi_pm_init(struct acpi_pm *pm, struct timer_service *ts, const struct irq_line *sci,
                  acpi_pm_cb power_off, acpi_pm_cb reset, void *opaque)
{
    memset(pm, 0, sizeof(*pm));
    pthread_mutex_init(&pm->lock, NULL);
    pm->ts = ts;
    if (sci) pm->sci = *sci;
    pm->power_off = power_off;
    pm->reset = reset;
    pm->opaque = opaque;
    pm->tmr_base_ns = clock_ns();
    timer_init(&pm->tmr_timer, tmr_fire, pm);
    reset_locked(pm);
}

int acpi_pm_register(struct acpi_pm *pm, struct router *r)
{
    static const struct {
        uint16_t base, len;
        const struct io_ops *ops;
        const char *name;
    } ports[] = {
        {ACPI_PM1A_EVT_BLK, ACPI_PM1_EVT_LEN, &evt_ops, "pm1a_evt"},
        {ACPI_PM1A_CNT_BLK, ACPI_PM1_CNT_LEN, &cnt_ops, "pm1a_cnt"},
        {ACPI_PM_TMR_BLK, ACPI_PM_TMR_LEN, &tmr_ops, "pm_tmr"},
        {ACPI_SMI_CMD_PORT, 1, &smi_ops, "smi_cmd"},
        {I8042_DATA_PORT, 1, &kbc_data_ops, "i8042_data"},
        {I8042_CMD_PORT, 1, &kbc_cmd_ops, "i8042_cmd"},
        {POST_PORT, 1, &post_ops, "post"},
    };
    for (unsigned i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        int err =
            router_add(r, ROUTE_PIO, ports[i].base, ports[i].len, ports[i].ops, pm, ports[i].name);
        if (err) return err;
    }
    return 0;
}

int acpi_pm_register_rcr(struct acpi_pm *pm, struct router *r)
{
    return router_add(r, ROUTE_PIO, ACPI_RESET_PORT, 1, &acpi_pm_rcr_ops, pm, "reset");
}

bool acpi_pm_power_button(struct acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    pm->sts |= ACPI_PM1_PWRBTN;
    update_sci(pm);
    bool seen = (pm->cnt & ACPI_PM1_SCI_EN) && (pm->en & ACPI_PM1_PWRBTN);
    pthread_mutex_unlock(&pm->lock);
    return seen;
}

uint8_t acpi_pm_post_code(struct acpi_pm *pm)
{
    return atomic_load_explicit(&pm->post_code, memory_order_relaxed);
}

void acpi_pm_reset(struct acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    reset_locked(pm);
    pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
    if (pm->ts) timer_del(pm->ts, &pm->tmr_timer);
    pthread_mutex_destroy(&pm->lock);
}
