/* rtc.c — MC146818 model; see rtc.h. Nothing ticks: the time registers are
 * computed from the host clock when read, and the register C flags are brought up
 * to date ("catch up") whenever they are looked at or a timer for an enabled
 * interrupt fires. */
#include "devices/rtc.h"

#include <string.h>
#include <time.h>

enum {
    R_SEC = 0x00,
    R_SEC_ALARM = 0x01,
    R_MIN = 0x02,
    R_MIN_ALARM = 0x03,
    R_HOUR = 0x04,
    R_HOUR_ALARM = 0x05,
    R_WDAY = 0x06,
    R_MDAY = 0x07,
    R_MON = 0x08,
    R_YEAR = 0x09,
    R_A = 0x0A,
    R_B = 0x0B,
    R_C = 0x0C,
    R_D = 0x0D,
};

#define A_UIP       0x80
#define A_DV_MASK   0x70
#define A_DV_NORMAL 0x20 /* 32.768 kHz time base, divider running */
#define B_SET       0x80
#define B_PIE       0x40
#define B_AIE       0x20
#define B_UIE       0x10
#define B_DM_BINARY 0x04
#define B_24H       0x02
#define C_IRQF      0x80
#define D_VRT       0x80

#define NS     1000000000ull
#define UIP_NS 244141ull /* 8 cycles of the 32.768 kHz base before each update */

static bool is_time_reg(unsigned i)
{
    return i == R_SEC || i == R_MIN || i == R_HOUR || (i >= R_WDAY && i <= R_YEAR) ||
           i == RTC_CENTURY_INDEX;
}

static uint64_t realtime_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * NS + (uint64_t)t.tv_nsec;
}

static uint8_t to_reg(const struct rtc *r, int v)
{
    if (r->cmos[R_B] & B_DM_BINARY) return (uint8_t)v;
    return (uint8_t)(((v / 10) % 10) << 4 | v % 10);
}

static int from_reg(const struct rtc *r, uint8_t v)
{
    if (r->cmos[R_B] & B_DM_BINARY) return v;
    return (v >> 4) * 10 + (v & 0x0F); /* garbage nibbles give odd but bounded values */
}

static uint8_t hour_reg(const struct rtc *r, int hour)
{
    if (r->cmos[R_B] & B_24H) return to_reg(r, hour);
    int h12 = hour % 12 ? hour % 12 : 12;
    return to_reg(r, h12) | (hour >= 12 ? 0x80 : 0);
}

/* The value register i shows for guest second `sec`. */
static uint8_t time_field(const struct rtc *r, unsigned i, int64_t sec)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) memset(&tm, 0, sizeof(tm));
    int year = tm.tm_year + 1900;
    switch (i) {
    case R_SEC: return to_reg(r, tm.tm_sec);
    case R_MIN: return to_reg(r, tm.tm_min);
    case R_HOUR: return hour_reg(r, tm.tm_hour);
    case R_WDAY: return to_reg(r, tm.tm_wday + 1);
    case R_MDAY: return to_reg(r, tm.tm_mday);
    case R_MON: return to_reg(r, tm.tm_mon + 1);
    case R_YEAR: return to_reg(r, year % 100);
    default: /* century */ return to_reg(r, year / 100 % 100);
    }
}

static int64_t guest_sec(const struct rtc *r, uint64_t real)
{
    return (int64_t)(real / NS) + r->offset;
}

/* SET 0 -> 1: freeze the current time into the registers the guest will edit. */
static void snapshot_time(struct rtc *r, uint64_t real)
{
    int64_t sec = guest_sec(r, real);
    for (unsigned i = 0; i < RTC_CMOS_SIZE; i++)
        if (is_time_reg(i)) r->cmos[i] = time_field(r, i, sec);
}

/* Takes the guest's edited registers as the new time: only the offset changes. */
static void apply_time(struct rtc *r, uint64_t real)
{
    struct tm tm = {0};
    uint8_t h = r->cmos[R_HOUR];
    tm.tm_sec = from_reg(r, r->cmos[R_SEC]) % 60;
    tm.tm_min = from_reg(r, r->cmos[R_MIN]) % 60;
    if (r->cmos[R_B] & B_24H)
        tm.tm_hour = from_reg(r, h) % 24;
    else
        tm.tm_hour = from_reg(r, h & 0x7F) % 12 + (h & 0x80 ? 12 : 0);
    tm.tm_mday = from_reg(r, r->cmos[R_MDAY]) % 32;
    if (!tm.tm_mday) tm.tm_mday = 1;
    tm.tm_mon = (from_reg(r, r->cmos[R_MON]) + 11) % 12;
    int century = from_reg(r, r->cmos[RTC_CENTURY_INDEX]);
    if (century < 19 || century > 99) century = 20;
    tm.tm_year = century * 100 + from_reg(r, r->cmos[R_YEAR]) % 100 - 1900;
    time_t t = timegm(&tm);
    if (t != (time_t)-1) r->offset = (int64_t)t - (int64_t)(real / NS);
    r->last_sec = guest_sec(r, real);
}

static uint64_t period_ns(const struct rtc *r)
{
    unsigned rate = r->cmos[R_A] & 0x0F;
    if (!rate || (r->cmos[R_A] & A_DV_MASK) != A_DV_NORMAL) return 0;
    unsigned hz = rate <= 2 ? 256u >> (rate - 1) : 32768u >> (rate - 1);
    return NS / hz;
}

static bool alarm_matches(const struct rtc *r, int64_t sec)
{
    static const unsigned pairs[3][2] = {
        {R_SEC_ALARM, R_SEC}, {R_MIN_ALARM, R_MIN}, {R_HOUR_ALARM, R_HOUR}};
    for (int i = 0; i < 3; i++) {
        uint8_t a = r->cmos[pairs[i][0]];
        if ((a & 0xC0) != 0xC0 && a != time_field(r, pairs[i][1], sec)) /* 11xxxxxx: don't care */
            return false;
    }
    return true;
}

/* Latches the flags for the updates and periods that have passed since last time. */
static void catch_up(struct rtc *r, uint64_t real, uint64_t mono)
{
    int64_t sec = guest_sec(r, real);
    if (r->cmos[R_B] & B_SET) {
        r->last_sec = sec; /* updates are inhibited while SET is 1 */
    } else if (sec > r->last_sec) {
        r->flags |= B_UIE;                            /* UF */
        if (alarm_matches(r, sec)) r->flags |= B_AIE; /* AF */
        r->last_sec = sec;
    } else if (sec < r->last_sec) {
        r->last_sec = sec; /* host clock stepped back */
    }
    uint64_t p = period_ns(r);
    if (p) {
        uint64_t idx = mono / p;
        if (idx > r->last_period) r->flags |= B_PIE; /* PF */
        r->last_period = idx;
    }
}

/* Drives the line (on change) and arms the timer for the next event that could
 * raise it. With the line already high nothing can change until C is read. */
static void update(struct rtc *r, uint64_t real, uint64_t mono)
{
    bool level = r->flags & r->cmos[R_B] & 0x70;
    if (level != r->irq_level) {
        r->irq_level = level;
        irq_set(&r->irq, level);
    }
    if (!r->ts) return;
    uint64_t deadline = UINT64_MAX, p = period_ns(r);
    if (!level) {
        if ((r->cmos[R_B] & B_PIE) && p) deadline = (mono / p + 1) * p;
        if ((r->cmos[R_B] & (B_AIE | B_UIE)) && !(r->cmos[R_B] & B_SET)) {
            uint64_t next_sec = mono + NS - real % NS;
            if (next_sec < deadline) deadline = next_sec;
        }
    }
    if (deadline == UINT64_MAX)
        timer_del(r->ts, &r->timer);
    else
        timer_mod(r->ts, &r->timer, deadline);
}

static void timer_fire(void *opaque)
{
    struct rtc *r = opaque;
    pthread_mutex_lock(&r->lock);
    uint64_t real = realtime_ns(), mono = clock_ns();
    catch_up(r, real, mono);
    update(r, real, mono);
    pthread_mutex_unlock(&r->lock);
}

static uint8_t data_read(struct rtc *r, unsigned i)
{
    uint64_t real = realtime_ns(), mono = clock_ns();
    uint8_t v;
    switch (i) {
    case R_A:
        v = r->cmos[R_A];
        if (!(r->cmos[R_B] & B_SET) && (v & A_DV_MASK) == A_DV_NORMAL && real % NS >= NS - UIP_NS)
            v |= A_UIP;
        return v;
    case R_C:
        catch_up(r, real, mono);
        v = r->flags | ((r->flags & r->cmos[R_B] & 0x70) ? C_IRQF : 0);
        r->flags = 0;
        update(r, real, mono);
        return v;
    case R_D: return D_VRT;
    default:
        if (is_time_reg(i) && !(r->cmos[R_B] & B_SET)) return time_field(r, i, guest_sec(r, real));
        return r->cmos[i];
    }
}

static void data_write(struct rtc *r, unsigned i, uint8_t v)
{
    uint64_t real = realtime_ns(), mono = clock_ns();
    switch (i) {
    case R_A:
        catch_up(r, real, mono); /* account for the old rate before switching */
        r->cmos[R_A] = v & 0x7F; /* UIP is read-only */
        if (period_ns(r)) r->last_period = mono / period_ns(r);
        break;
    case R_B: {
        bool was_set = r->cmos[R_B] & B_SET;
        catch_up(r, real, mono);
        if (v & B_SET) v &= ~B_UIE; /* the chip clears UIE while the clock is being set */
        if (!was_set && (v & B_SET)) snapshot_time(r, real);
        r->cmos[R_B] = v;
        if (was_set && !(v & B_SET)) apply_time(r, real);
        break;
    }
    case R_C:
    case R_D: return; /* read-only */
    default:
        if (is_time_reg(i) && !(r->cmos[R_B] & B_SET)) {
            /* a field written while the clock runs sets just that field */
            snapshot_time(r, real);
            r->cmos[i] = v;
            apply_time(r, real);
        } else {
            r->cmos[i] = v;
        }
        return;
    }
    update(r, real, mono);
}

static uint64_t rtc_read(void *dev, uint64_t offset, int size)
{
    struct rtc *r = dev;
    uint64_t v = 0;
    pthread_mutex_lock(&r->lock);
    for (int b = 0; b < size && offset + b < 2; b++) {
        uint8_t x = offset + b == 0 ? r->index_reg : data_read(r, r->index_reg & 0x7F);
        v |= (uint64_t)x << (8 * b);
    }
    pthread_mutex_unlock(&r->lock);
    return v;
}

static void rtc_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct rtc *r = dev;
    pthread_mutex_lock(&r->lock);
    for (int b = 0; b < size && offset + b < 2; b++) {
        uint8_t x = (uint8_t)(value >> (8 * b));
        if (offset + b == 0)
            r->index_reg = x;
        else
            data_write(r, r->index_reg & 0x7F, x);
    }
    pthread_mutex_unlock(&r->lock);
}

const struct io_ops rtc_io_ops = {.read = rtc_read, .write = rtc_write};

/* A reset clears the interrupt enables and flags; the time base, formats and the
 * clock itself are battery-backed and survive. */
static void reset_locked(struct rtc *r)
{
    uint64_t real = realtime_ns(), mono = clock_ns();
    r->cmos[R_B] &= ~(B_PIE | B_AIE | B_UIE | 0x08 /* SQWE */);
    r->flags = 0;
    r->last_sec = guest_sec(r, real);
    uint64_t p = period_ns(r);
    r->last_period = p ? mono / p : 0;
    update(r, real, mono);
}

void rtc_init(struct rtc *r, struct timer_service *ts, const struct irq_line *irq)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->ts = ts;
    if (irq) r->irq = *irq;
    timer_init(&r->timer, timer_fire, r);
    r->cmos[R_A] = A_DV_NORMAL | 0x06; /* 1024 Hz periodic rate, as a BIOS leaves it */
    r->cmos[R_B] = B_24H;              /* 24-hour BCD (Linux refuses 12-hour mode) */
    reset_locked(r);
}

int rtc_register(struct rtc *r, struct router *router)
{
    return router_add(router, ROUTE_PIO, RTC_BASE, 2, &rtc_io_ops, r, "rtc");
}

static void put16(struct rtc *r, unsigned i, uint64_t v)
{
    r->cmos[i] = (uint8_t)v;
    r->cmos[i + 1] = (uint8_t)(v >> 8);
}

void rtc_set_memory(struct rtc *r, uint64_t below_4g, uint64_t above_4g)
{
    const uint64_t K = 1024, M = 1024 * 1024;
    uint64_t ext = below_4g > M ? (below_4g - M) / K : 0;                 /* KiB above 1 MiB */
    uint64_t hi = below_4g > 16 * M ? (below_4g - 16 * M) / (64 * K) : 0; /* 64 KiB above 16 MiB */
    uint64_t top = above_4g / (64 * K);                                   /* 64 KiB above 4 GiB */
    pthread_mutex_lock(&r->lock);
    put16(r, 0x15, 640);
    put16(r, 0x17, ext > 0xFFFF ? 0xFFFF : ext);
    put16(r, 0x30, ext > 0xFFFF ? 0xFFFF : ext);
    put16(r, 0x34, hi > 0xFFFF ? 0xFFFF : hi);
    if (top > 0xFFFFFF) top = 0xFFFFFF;
    r->cmos[0x5B] = (uint8_t)top;
    r->cmos[0x5C] = (uint8_t)(top >> 8);
    r->cmos[0x5D] = (uint8_t)(top >> 16);
    unsigned sum = 0;
    for (unsigned i = 0x10; i <= 0x2D; i++)
        sum += r->cmos[i];
    r->cmos[0x2E] = (uint8_t)(sum >> 8);
    r->cmos[0x2F] = (uint8_t)sum;
    pthread_mutex_unlock(&r->lock);
}

void rtc_cmos_set(struct rtc *r, unsigned index, uint8_t value)
{
    if (index < 0x0E || index >= RTC_CMOS_SIZE) return;
    pthread_mutex_lock(&r->lock);
    r->cmos[index] = value;
    pthread_mutex_unlock(&r->lock);
}

uint8_t rtc_cmos_get(struct rtc *r, unsigned index)
{
    if (index < 0x0E || index >= RTC_CMOS_SIZE) return 0;
    pthread_mutex_lock(&r->lock);
    uint8_t v = r->cmos[index];
    pthread_mutex_unlock(&r->lock);
    return v;
}

bool rtc_nmi_disabled(struct rtc *r)
{
    pthread_mutex_lock(&r->lock);
    bool d = r->index_reg & 0x80;
    pthread_mutex_unlock(&r->lock);
    return d;
}

void rtc_reset(struct rtc *r)
{
    pthread_mutex_lock(&r->lock);
    reset_locked(r);
    pthread_mutex_unlock(&r->lock);
}

void rtc_destroy(struct rtc *r)
{
    if (r->ts) timer_del(r->ts, &r->timer);
    pthread_mutex_destroy(&r->lock);
}
