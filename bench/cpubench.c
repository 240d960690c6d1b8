/* cpubench.c — a CPU-bound static program (sorting, hashing, string and
 * floating-point loops) built freestanding, so that the very same binary runs
 * natively on the host and inside the emulator (bench/emurun). It needs only two
 * system calls: write and exit_group. Prints a checksum per kernel so runs can
 * be compared. */
#include <stddef.h>
#include <stdint.h>

static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *dd = d;
    const unsigned char *ss = s;
    while (n--)
        *dd++ = *ss++;
    return d;
}

void *memset(void *d, int c, size_t n)
{
    unsigned char *dd = d;
    while (n--)
        *dd++ = (unsigned char)c;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

static size_t my_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static void put(const char *s)
{
    sys3(1, 1, (long)s, (long)my_strlen(s));
}

static void put_hex(const char *label, uint64_t v)
{
    char buf[64];
    int n = 0;
    while (label[n]) {
        buf[n] = label[n];
        n++;
    }
    for (int i = 60; i >= 0; i -= 4)
        buf[n++] = "0123456789abcdef"[(v >> i) & 15];
    buf[n++] = '\n';
    buf[n] = 0;
    put(buf);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define N_SORT (1 << 17)
static uint32_t arr[N_SORT], tmp[N_SORT];

static void merge_sort(uint32_t *a, uint32_t *t, size_t n)
{
    if (n < 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t v = a[i];
            size_t j = i;
            while (j && a[j - 1] > v) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = v;
        }
        return;
    }
    size_t h = n / 2;
    merge_sort(a, t, h);
    merge_sort(a + h, t, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        t[k++] = a[i] <= a[j] ? a[i++] : a[j++];
    while (i < h)
        t[k++] = a[i++];
    while (j < n)
        t[k++] = a[j++];
    memcpy(a, t, n * sizeof(*a));
}

static uint64_t bench_sort(void)
{
    uint64_t sum = 0;
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < N_SORT; i++)
            arr[i] = (uint32_t)xorshift();
        merge_sort(arr, tmp, N_SORT);
        for (size_t i = 0; i < N_SORT; i += 97)
            sum = sum * 31 + arr[i];
    }
    return sum;
}

static uint8_t blob[1 << 20];

static uint64_t bench_hash(void)
{
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)xorshift();
    uint64_t h = 1469598103934665603ull;
    for (int round = 0; round < 6; round++)
        for (size_t i = 0; i < sizeof(blob); i++) {
            h ^= blob[i];
            h *= 1099511628211ull;
        }
    /* a murmur-style mix over 64-bit words */
    const uint64_t *w = (const uint64_t *)blob;
    for (int round = 0; round < 8; round++)
        for (size_t i = 0; i < sizeof(blob) / 8; i++) {
            uint64_t k = w[i] * 0x87c37b91114253d5ull;
            k = (k << 31) | (k >> 33);
            h ^= k * 0x4cf5ad432745937full;
            h = ((h << 27) | (h >> 37)) * 5 + 0x52dce729;
        }
    return h;
}

static char text[1 << 16];

static uint64_t bench_string(void)
{
    uint64_t acc = 0;
    for (size_t i = 0; i < sizeof(text) - 1; i++)
        text[i] = (char)('a' + xorshift() % 26);
    text[sizeof(text) - 1] = 0;
    static char copy[1 << 16];
    for (int round = 0; round < 40; round++) {
        text[(round * 7919) % (sizeof(text) - 1)] = 0;
        acc += my_strlen(text);
        memcpy(copy, text, sizeof(text));
        acc += (uint64_t)memcmp(copy, text, sizeof(text));
        text[(round * 7919) % (sizeof(text) - 1)] = 'q';
        /* count a digram */
        for (size_t i = 0; i + 1 < sizeof(text) - 1; i++)
            acc += text[i] == 'a' && text[i + 1] == 'b';
    }
    return acc;
}

static uint64_t bench_float(void)
{
    /* Mandelbrot set area and a small n-body style loop in double precision */
    int inside = 0;
    for (int y = 0; y < 160; y++)
        for (int x = 0; x < 240; x++) {
            double cr = -2.0 + x * (3.0 / 240), ci = -1.2 + y * (2.4 / 160);
            double zr = 0, zi = 0;
            int k = 0;
            for (; k < 200 && zr * zr + zi * zi < 4.0; k++) {
                double t = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = t;
            }
            inside += k == 200;
        }
    double px[8], py[8], vx[8] = {0}, vy[8] = {0};
    for (int i = 0; i < 8; i++) {
        px[i] = (double)(xorshift() % 1000) / 10.0;
        py[i] = (double)(xorshift() % 1000) / 10.0;
    }
    for (int step = 0; step < 4000; step++)
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) {
                if (i == j) continue;
                double dx = px[j] - px[i], dy = py[j] - py[i];
                double d2 = dx * dx + dy * dy + 0.01;
                double inv = 1.0 / (d2 * __builtin_sqrt(d2));
                vx[i] += dx * inv * 0.001;
                vy[i] += dy * inv * 0.001;
                px[i] += vx[i] * 0.001;
                py[i] += vy[i] * 0.001;
            }
    double e = 0;
    for (int i = 0; i < 8; i++)
        e += vx[i] * vx[i] + vy[i] * vy[i];
    return (uint64_t)inside * 1000003u + (uint64_t)(e * 1e6);
}

int main(void)
{
    put_hex("sort   ", bench_sort());
    put_hex("hash   ", bench_hash());
    put_hex("string ", bench_string());
    put_hex("float  ", bench_float());
    return 0;
}

__attribute__((force_align_arg_pointer)) void _start(void)
{
    int r = main();
    sys3(231, r, 0, 0);
    for (;;)
        ;
}
