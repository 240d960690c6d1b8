/* acpi_pm.h — ACPI fixed hardware and the small legacy ports around it.
 *
 * Owns:
 *   PM1a event block  ACPI_PM1A_EVT_BLK (PM1_STS 16-bit write-1-to-clear, PM1_EN 16-bit)
 *   PM1a control      ACPI_PM1A_CNT_BLK (SCI_EN, SLP_TYP, SLP_EN)
 *   PM timer          ACPI_PM_TMR_BLK   (24-bit, 3.579545 MHz from host time)
 *   SMI command port  ACPI_SMI_CMD_PORT (ACPI_ENABLE_VALUE / ACPI_DISABLE_VALUE toggle
 *                     SCI_EN, i.e. the "firmware" answering the OS's ACPI mode switch)
 *   reset control     0xCF9 (a write with bit 2 set resets) — reached through the PCI
 *                     host, which owns 0xCF8-0xCFF and forwards byte accesses at 0xCF9
 *                     to acpi_pm_rcr_ops (see pci.h); acpi_pm_register_rcr() claims the
 *                     port directly on a machine without a PCI host
 *   i8042             0x60/0x64, a controller with nothing attached: status 0x1C (no
 *                     data, input buffer empty), controller commands answered, 0xFE and
 *                     output-port writes with bit 0 clear reset the machine
 *   POST port         0x80 (writes kept as the last POST code, reads 0xFF)
 * Port 0x61 (system control port B) belongs to the PIT (pit.h).
 *
 * The SCI (ISA IRQ 9, level, active high: the MADT needs an interrupt source
 * override saying so) is high while SCI_EN is set and an enabled PM1 status bit
 * (timer carry, power button, ...) is set; it is driven with the PM lock held (lock
 * order acpi_pm → interrupt controller). The power_off and reset callbacks run on
 * the vCPU thread that made the request, without the lock. Call acpi_pm_destroy()
 * only after the timer service has stopped. */
#ifndef UNUM_DEVICES_ACPI_PM_H
#define UNUM_DEVICES_ACPI_PM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/irq.h"
#include "devices/timer.h"
#include "machine/router.h"

/* --- values the ACPI table builder must use (FADT, DSDT, MADT) --- */
#define ACPI_PM1A_EVT_BLK   0x600 /* FADT.PM1a_EVT_BLK / X_PM1a_EVT_BLK (32 bits) */
#define ACPI_PM1_EVT_LEN    4     /* FADT.PM1_EVT_LEN */
#define ACPI_PM1A_CNT_BLK   0x604 /* FADT.PM1a_CNT_BLK / X_PM1a_CNT_BLK (16 bits) */
#define ACPI_PM1_CNT_LEN    2     /* FADT.PM1_CNT_LEN */
#define ACPI_PM_TMR_BLK     0x608 /* FADT.PM_TMR_BLK / X_PM_TMR_BLK (32 bits) */
#define ACPI_PM_TMR_LEN     4     /* FADT.PM_TMR_LEN */
#define ACPI_PM_TMR_VAL_EXT 0     /* FADT.Flags bit 8 (TMR_VAL_EXT): 0, the timer is 24-bit */
#define ACPI_PM_TMR_BITS    24
#define ACPI_PM_TMR_FREQ    3579545ull
#define ACPI_SMI_CMD_PORT   0xB2  /* FADT.SMI_CMD */
#define ACPI_ENABLE_VALUE   0xF1  /* FADT.ACPI_ENABLE */
#define ACPI_DISABLE_VALUE  0xF0  /* FADT.ACPI_DISABLE */
#define ACPI_SCI_IRQ        9     /* FADT.SCI_INT; level, active high */
#define ACPI_SLP_TYP_S5     5     /* DSDT: Name (\_S5, Package () { 5, 5, 0, 0 }) */
#define ACPI_RESET_PORT     0xCF9 /* FADT.RESET_REG: System I/O, 8 bits, and flag RESET_REG_SUP */
#define ACPI_RESET_VALUE    0x06  /* FADT.RESET_VALUE */
/* FADT.IAPC_BOOT_ARCH must NOT claim an 8042 (bit 1) and the DSDT must not list
 * PNP0303/PNP0F13: Linux then skips its i8042 probe entirely. */

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT  0x64
#define POST_PORT       0x80

/* PM1_STS / PM1_EN bits */
#define ACPI_PM1_TMR    0x0001
#define ACPI_PM1_BM     0x0010
#define ACPI_PM1_GBL    0x0020
#define ACPI_PM1_PWRBTN 0x0100
#define ACPI_PM1_SLPBTN 0x0200
#define ACPI_PM1_RTC    0x0400
#define ACPI_PM1_WAK    0x8000
/* PM1_CNT bits */
#define ACPI_PM1_SCI_EN        0x0001
#define ACPI_PM1_SLP_TYP_SHIFT 10
#define ACPI_PM1_SLP_EN        0x2000

typedef void (*acpi_pm_cb)(void *opaque);

struct acpi_pm {
    pthread_mutex_t lock;
    struct timer_service *ts;
    struct irq_line sci;
    acpi_pm_cb power_off, reset;
    void *opaque;
    uint16_t sts, en, cnt;
    uint64_t tmr_base_ns; /* PM timer epoch (read-only after init: reads take no lock) */
    uint64_t tmr_carries; /* bit-23 transitions already reflected in TMR_STS */
    bool sci_level;
    uint8_t smi_cmd, rcr;
    /* i8042 */
    uint8_t kbc_ctr, kbc_outport, kbc_obuf, kbc_status_extra;
    bool kbc_obf, kbc_last_cmd;
    uint8_t kbc_pending; /* controller command waiting for its data byte, or 0 */
    _Atomic uint8_t post_code;
    struct timer tmr_timer;
};

/* `sci` is copied. power_off runs on an S5 request, reset on 0xCF9 / 8042 reset. */
void acpi_pm_init(struct acpi_pm *pm, struct timer_service *ts, const struct irq_line *sci,
                  acpi_pm_cb power_off, acpi_pm_cb reset, void *opaque);
/* Claims the PM1a event/control blocks, the PM timer, 0xB2, 0x60, 0x64 and 0x80. */
int acpi_pm_register(struct acpi_pm *pm, struct router *r);
/* Claims 0xCF9 alone (only when no PCI host owns 0xCF8-0xCFF). */
int acpi_pm_register_rcr(struct acpi_pm *pm, struct router *r);
/* Presses the power button: PWRBTN_STS, and an SCI if the OS enabled it. Returns
 * whether the OS will see it (ACPI mode on and PWRBTN_EN set); if not, the
 * platform may prefer a hard power-off. */
bool acpi_pm_power_button(struct acpi_pm *pm);
/* The PM timer value (24 bits). */
uint32_t acpi_pm_timer(const struct acpi_pm *pm);
uint8_t acpi_pm_post_code(struct acpi_pm *pm);
/* Back to legacy (non-ACPI) mode with events disabled, as after a reset. */
void acpi_pm_reset(struct acpi_pm *pm);
void acpi_pm_destroy(struct acpi_pm *pm);

/* The 1-byte reset control register (offset 0), dev = the struct acpi_pm. */
extern const struct io_ops acpi_pm_rcr_ops;

#endif
