/* pc_validate.c — checks a `unum run` configuration before anything starts:
 * kernel and initrd readable and well-formed, memory within the kernel's needs
 * and the host's means. Every problem is one line and exit status 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <zlib.h>

#include "machine/loader.h"
#include "machine/pc.h"
#include "machine/pc_internal.h"
#include "util/util.h"

uint8_t *pc_read_file(const char *what, const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s %s: %s", what, path, strerror(errno));
    if (fseek(f, 0, SEEK_END) < 0) die("cannot read %s %s: %s", what, path, strerror(errno));
    long n = ftell(f);
    if (n <= 0) die("%s %s is empty or unreadable", what, path);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        die("cannot read %s %s: %s", what, path, ferror(f) ? strerror(errno) : "short read");
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* A gzip initrd must decompress completely with a good CRC; other formats the
 * kernel understands are only recognised by their magic. */
static const char *check_initrd(const uint8_t *d, size_t n)
{
    if (n >= 6 && !memcmp(d, "07070", 5)) return NULL; /* uncompressed cpio */
    if (n >= 2 && d[0] == 0x1f && d[1] == 0x8b) {
        z_stream z = {0};
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return "cannot initialise zlib";
        uint8_t out[65536];
        z.next_in = (uint8_t *)d;
        z.avail_in = (uInt)n;
        int r;
        do {
            z.next_out = out;
            z.avail_out = sizeof(out);
            r = inflate(&z, Z_NO_FLUSH);
        } while (r == Z_OK);
        inflateEnd(&z);
        return r == Z_STREAM_END ? NULL : "corrupt gzip data";
    }
    static const struct {
        const char *magic;
        size_t len;
    } known[] = {
        {"\xfd"
         "7zXZ",
         5},
        {"\x02\x21\x4c\x18", 4},
        {"\x28\xb5\x2f\xfd", 4},
        {"BZh", 3},
        {"\x5d\x00\x00", 3},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (n >= known[i].len && !memcmp(d, known[i].magic, known[i].len)) return NULL;
    return "not an initramfs (cpio archive, compressed or not)";
}

void pc_validate(const struct pc_config *cfg)
{
    size_t ksize, isize;
    uint8_t *k = pc_read_file("kernel", cfg->kernel, &ksize);
    struct linux_image img;
    const char *why;
    if (linux_image_parse(k, ksize, &img, &why) < 0) die("kernel %s: %s", cfg->kernel, why);
    uint8_t *ird = pc_read_file("initrd", cfg->initrd, &isize);
    if ((why = check_initrd(ird, isize))) die("initrd %s: %s", cfg->initrd, why);
    uint64_t need = linux_min_memory(&img, isize);
    if (cfg->memory < need)
        die("--memory %lluM is below the kernel's needs (at least %lluM with this initrd)",
            (unsigned long long)(cfg->memory >> 20),
            (unsigned long long)((need + (1 << 20) - 1) >> 20));
    struct sysinfo si;
    if (sysinfo(&si) == 0) {
        uint64_t host = (uint64_t)si.totalram * si.mem_unit;
        if (cfg->memory > host)
            die("--memory %lluM is more than this host has (%lluM)",
                (unsigned long long)(cfg->memory >> 20), (unsigned long long)(host >> 20));
    }
    if (strlen(cfg->append) > 2048) die("--append: kernel command line too long (max 2048 bytes)");
    free(k);
    free(ird);
}
