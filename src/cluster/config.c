/* config.c — cluster files (format in docs/CLUSTER.md) and local clusters.
 *
 * The parser reads the file line by line, checks what can be checked on one line
 * (syntax, key names, values, the secret) and keeps the node lines in file order;
 * the checks that need the whole file (node ids 0..n-1, unique addresses, vCPU
 * total, the platform node, a secret at all) run at the end. Every failure is one
 * line, "FILE:LINE: problem" (or "FILE: problem" when no line is to blame). */
#include "cluster/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define PAGE_SIZE      4096ull
#define MIN_NODE_MEM   (4ull << 20)
#define MAX_MEM        (1ull << 52) /* the x86-64 physical address space */
#define MAX_CPUS       64
#define CONNECT_MS     10000
#define HEARTBEAT_MS   2000
#define MIN_TIMEOUT_MS 100      /* the transport ticks every 100 ms */
#define MAX_TIMEOUT_MS 86400000 /* one day */
#define LOCAL_SECRET   32
#define WS             " \t\r\n\v\f"

enum key {
    K_SECRET_FILE,
    K_SECRET_HEX,
    K_PLATFORM,
    K_TRANSPORT,
    K_CONNECT_TIMEOUT,
    K_HEARTBEAT_TIMEOUT,
    K_NUMA,
    NKEYS
};

static const char *const key_names[NKEYS] = {
    [K_SECRET_FILE] = "secret-file",
    [K_SECRET_HEX] = "secret-hex",
    [K_PLATFORM] = "platform",
    [K_TRANSPORT] = "transport",
    [K_CONNECT_TIMEOUT] = "connect-timeout",
    [K_HEARTBEAT_TIMEOUT] = "heartbeat-timeout",
    [K_NUMA] = "numa",
};

struct parser {
    const char *path;
    int line;
    char *err;
    size_t errlen;
    struct cluster_config *cfg;
    int key_line[NKEYS]; /* line where each key was given, 0 = not given */
    long platform;
    int nseen; /* node lines, in file order */
    long seen_id[CLUSTER_MAX_NODES];
    int seen_line[CLUSTER_MAX_NODES];
    struct cluster_node seen[CLUSTER_MAX_NODES];
};

static void verr(char *err, size_t errlen, const char *path, int line, const char *fmt, va_list ap)
{
    if (!err || !errlen) return;
    int n = 0;
    if (path && line > 0)
        n = snprintf(err, errlen, "%s:%d: ", path, line);
    else if (path)
        n = snprintf(err, errlen, "%s: ", path);
    if (n < 0) n = 0;
    if ((size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

static int __attribute__((format(printf, 3, 4)))
fail(struct parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(p->err, p->errlen, p->path, line, fmt, ap);
    va_end(ap);
    return -1;
}

static int __attribute__((format(printf, 3, 4)))
fail_local(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(err, errlen, NULL, 0, fmt, ap);
    va_end(ap);
    return -1;
}

static char *trim(char *s)
{
    s += strspn(s, WS);
    size_t n = strlen(s);
    while (n && strchr(WS, s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Bytes as the largest exact unit parse_size understands: "256M", "1001K", "5000". */
static const char *fmt_size(uint64_t v, char buf[32])
{
    static const char units[] = "TGMK";
    for (int i = 0; i < 4; i++) {
        unsigned shift = 40 - 10 * (unsigned)i;
        if (v && !(v & ((1ull << shift) - 1))) {
            snprintf(buf, 32, "%llu%c", (unsigned long long)(v >> shift), units[i]);
            return buf;
        }
    }
    snprintf(buf, 32, "%llu", (unsigned long long)v);
    return buf;
}

/* "10" or "10s" (seconds) or "500ms", MIN_TIMEOUT_MS..MAX_TIMEOUT_MS. */
static int parse_duration_ms(const char *v, int *out)
{
    char num[24];
    size_t len = strlen(v);
    long mult = 1000;
    if (len > 2 && !strcmp(v + len - 2, "ms")) {
        len -= 2;
        mult = 1;
    } else if (len > 1 && v[len - 1] == 's') {
        len--;
    }
    if (!len || len >= sizeof(num) || !isdigit((unsigned char)v[0])) return -1;
    memcpy(num, v, len);
    num[len] = 0;
    long n;
    if (parse_int(num, 0, MAX_TIMEOUT_MS / mult, &n)) return -1;
    n *= mult;
    if (n < MIN_TIMEOUT_MS) return -1;
    *out = (int)n;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int set_secret_hex(struct parser *p, const char *v)
{
    size_t len = strlen(v);
    for (size_t i = 0; i < len; i++)
        if (hexval((unsigned char)v[i]) < 0)
            return fail(p, p->line, "secret-hex has '%c', which is not a hex digit", v[i]);
    if (len % 2) return fail(p, p->line, "secret-hex has an odd number of hex digits (%zu)", len);
    if (len / 2 < CLUSTER_SECRET_MIN)
        return fail(p, p->line, "secret-hex is %zu bytes; at least %d (%d hex digits) are needed",
                    len / 2, CLUSTER_SECRET_MIN, 2 * CLUSTER_SECRET_MIN);
    if (len / 2 > CLUSTER_SECRET_MAX)
        return fail(p, p->line, "secret-hex is %zu bytes; at most %d (%d hex digits) are allowed",
                    len / 2, CLUSTER_SECRET_MAX, 2 * CLUSTER_SECRET_MAX);
    for (size_t i = 0; i < len / 2; i++)
        p->cfg->secret[i] = (uint8_t)(hexval(v[2 * i]) << 4 | hexval(v[2 * i + 1]));
    p->cfg->secret_len = len / 2;
    return 0;
}

/* A relative secret-file path is relative to the cluster file's directory. */
static int load_secret_file(struct parser *p, const char *v)
{
    char full[PATH_MAX];
    const char *slash = strrchr(p->path, '/');
    int n;
    if (v[0] != '/' && slash)
        n = snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - p->path), p->path, v);
    else
        n = snprintf(full, sizeof(full), "%s", v);
    if (n < 0 || (size_t)n >= sizeof(full))
        return fail(p, p->line, "secret file path '%s' is too long", v);

    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return fail(p, p->line, "cannot read secret file %s: %s", full, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return fail(p, p->line, "cannot read secret file %s: %s", full, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(p, p->line, "secret file %s is not a regular file", full);
    }
    if (st.st_mode & 077) {
        close(fd);
        return fail(p, p->line, "secret file %s is readable by other users (mode %04o; chmod 600)",
                    full, (unsigned)(st.st_mode & 07777));
    }
    uint8_t buf[CLUSTER_SECRET_MAX + 2];
    size_t len = 0;
    while (len < sizeof(buf)) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            explicit_bzero(buf, sizeof(buf));
            return fail(p, p->line, "cannot read secret file %s: %s", full, strerror(e));
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    if (len && buf[len - 1] == '\n') len--;
    int rc = 0;
    if (len == sizeof(buf) - 1 || len > CLUSTER_SECRET_MAX)
        rc = fail(p, p->line, "secret file %s is longer than %d bytes (use 32 random bytes)", full,
                  CLUSTER_SECRET_MAX);
    else if (len == 0)
        rc = fail(p, p->line, "secret file %s is empty", full);
    else if (len < CLUSTER_SECRET_MIN)
        rc = fail(p, p->line, "secret file %s has %zu bytes; at least %d are needed", full, len,
                  CLUSTER_SECRET_MIN);
    if (!rc) {
        memcpy(p->cfg->secret, buf, len);
        p->cfg->secret_len = len;
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

static int parse_key(struct parser *p, enum key k, const char *v)
{
    struct cluster_config *cfg = p->cfg;
    switch (k) {
    case K_SECRET_FILE:
    case K_SECRET_HEX: {
        enum key other = k == K_SECRET_FILE ? K_SECRET_HEX : K_SECRET_FILE;
        if (p->key_line[other])
            return fail(p, p->line,
                        "secret-file and secret-hex are both given (%s on line %d); use one",
                        key_names[other], p->key_line[other]);
        return k == K_SECRET_FILE ? load_secret_file(p, v) : set_secret_hex(p, v);
    }
    case K_PLATFORM:
        if (parse_int(v, 0, INT_MAX, &p->platform))
            return fail(p, p->line, "platform '%s' is not a node id", v);
        return 0;
    case K_TRANSPORT:
        if (strlen(v) >= sizeof(cfg->transport))
            return fail(p, p->line, "transport '%s' is longer than %zu characters", v,
                        sizeof(cfg->transport) - 1);
        for (const char *c = v; *c; c++)
            if (!isalnum((unsigned char)*c) && !strchr("_-,^:", *c))
                return fail(p, p->line,
                            "transport '%s' has '%c': use UCX transport names (letters, digits, "
                            "'_', '-') separated by ',' (e.g. tcp or sm,tcp)",
                            v, *c);
        strcpy(cfg->transport, v);
        return 0;
    case K_CONNECT_TIMEOUT:
    case K_HEARTBEAT_TIMEOUT:
        if (parse_duration_ms(v, k == K_CONNECT_TIMEOUT ? &cfg->connect_timeout_ms
                                                        : &cfg->heartbeat_timeout_ms))
            return fail(p, p->line,
                        "%s '%s' is not a duration from 100ms to 86400 seconds (e.g. 10 or 500ms)",
                        key_names[k], v);
        return 0;
    case K_NUMA:
        if (!strcmp(v, "on"))
            cfg->numa = true;
        else if (!strcmp(v, "off"))
            cfg->numa = false;
        else
            return fail(p, p->line, "numa '%s' must be on or off", v);
        return 0;
    case NKEYS: break;
    }
    return -1;
}

static int parse_address(struct parser *p, long id, const char *v, struct cluster_node *nd)
{
    const char *colon = strrchr(v, ':');
    if (!colon) return fail(p, p->line, "node %ld: address '%s' has no port (HOST:PORT)", id, v);
    size_t hl = (size_t)(colon - v);
    if (!hl) return fail(p, p->line, "node %ld: address '%s' has no host (HOST:PORT)", id, v);
    if (hl >= sizeof(nd->host))
        return fail(p, p->line, "node %ld: host in address '%s' is longer than %zu characters", id,
                    v, sizeof(nd->host) - 1);
    for (size_t i = 0; i < hl; i++)
        if (!isalnum((unsigned char)v[i]) && !strchr(".-_", v[i]))
            return fail(p, p->line,
                        "node %ld: host in address '%s' has '%c' (an IPv4 address or host name "
                        "is expected)",
                        id, v, v[i]);
    long port;
    if (parse_int(colon + 1, 1, 65535, &port))
        return fail(p, p->line, "node %ld: port '%s' in address '%s' is not in 1..65535", id,
                    colon + 1, v);
    memset(nd->host, 0, sizeof(nd->host));
    memcpy(nd->host, v, hl);
    nd->port = (uint16_t)port;
    return 0;
}

/* "node ID address=HOST:PORT cpus=N memory=SIZE"; s points after "node". */
static int parse_node(struct parser *p, char *s)
{
    static const char *const usage = "node ID address=HOST:PORT cpus=N memory=SIZE";
    char *save;
    char *tok = strtok_r(s, WS, &save);
    if (!tok) return fail(p, p->line, "node line without an id: expected '%s'", usage);
    long id;
    if (parse_int(tok, 0, INT_MAX, &id))
        return fail(p, p->line, "node id '%s' is not a number: expected '%s'", tok, usage);
    if (p->nseen == CLUSTER_MAX_NODES)
        return fail(p, p->line, "node %ld: more than %d nodes", id, CLUSTER_MAX_NODES);

    struct cluster_node nd;
    memset(&nd, 0, sizeof(nd));
    bool have_addr = false, have_cpus = false, have_mem = false;
    while ((tok = strtok_r(NULL, WS, &save))) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok)
            return fail(p, p->line, "node %ld: '%s' is not key=value (no spaces around '=')", id,
                        tok);
        *eq = 0;
        const char *v = eq + 1;
        bool *have;
        if (!strcmp(tok, "address"))
            have = &have_addr;
        else if (!strcmp(tok, "cpus"))
            have = &have_cpus;
        else if (!strcmp(tok, "memory"))
            have = &have_mem;
        else
            return fail(p, p->line,
                        "node %ld: unknown attribute '%s' (expected address, cpus, memory)", id,
                        tok);
        if (*have) return fail(p, p->line, "node %ld: %s is given twice", id, tok);
        *have = true;
        if (have == &have_addr) {
            if (parse_address(p, id, v, &nd)) return -1;
        } else if (have == &have_cpus) {
            long c;
            if (parse_int(v, 0, LONG_MAX, &c))
                return fail(p, p->line, "node %ld: cpus '%s' is not a number", id, v);
            if (c == 0) return fail(p, p->line, "node %ld has zero vCPUs", id);
            if (c > MAX_CPUS)
                return fail(p, p->line, "node %ld: cpus %ld is more than the %d vCPUs supported",
                            id, c, MAX_CPUS);
            nd.cpus = (int)c;
        } else {
            if (parse_size(v, &nd.memory))
                return fail(p, p->line, "node %ld: memory '%s' is not a size (e.g. 512M or 2G)", id,
                            v);
            if (nd.memory % PAGE_SIZE)
                return fail(p, p->line,
                            "node %ld: memory %s is not a multiple of the 4 KiB page size", id, v);
            if (nd.memory < MIN_NODE_MEM)
                return fail(p, p->line, "node %ld: memory %s is below the 4 MiB minimum", id, v);
            if (nd.memory > MAX_MEM)
                return fail(p, p->line, "node %ld: memory %s is more than 4 PiB", id, v);
        }
    }
    if (!have_addr) return fail(p, p->line, "node %ld has no address (address=HOST:PORT)", id);
    if (!have_cpus) return fail(p, p->line, "node %ld has no cpus (cpus=N)", id);
    if (!have_mem) return fail(p, p->line, "node %ld has no memory (memory=SIZE)", id);
    p->seen_id[p->nseen] = id;
    p->seen_line[p->nseen] = p->line;
    p->seen[p->nseen] = nd;
    p->nseen++;
    return 0;
}

static int parse_line(struct parser *p, char *s)
{
    char *hash = strchr(s, '#');
    if (hash) *hash = 0;
    s = trim(s);
    if (!*s) return 0;

    char *word = s;
    while (*s && !strchr(WS, *s) && *s != '=')
        s++;
    size_t wl = (size_t)(s - word);
    if (wl == 4 && !strncmp(word, "node", 4) && (!*s || strchr(WS, *s))) return parse_node(p, s);

    char *eq = s + strspn(s, WS);
    char c = *eq;
    word[wl] = 0; /* the message names the first word only: the rest may be a secret */
    if (!wl || c != '=')
        return fail(p, p->line,
                    "malformed line%s%s%s: expected 'key = value' or 'node ID address=HOST:PORT "
                    "cpus=N memory=SIZE'",
                    wl ? " starting '" : "", word, wl ? "'" : "");
    char *v = trim(eq + 1);
    enum key k = NKEYS;
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(word, key_names[i])) k = (enum key)i;
    if (k == NKEYS) return fail(p, p->line, "unknown key '%s'", word);
    if (!*v) return fail(p, p->line, "%s has no value", word);
    if (p->key_line[k])
        return fail(p, p->line, "%s is given twice (first on line %d)", word, p->key_line[k]);
    p->key_line[k] = p->line;
    return parse_key(p, k, v);
}

static bool has_id(const struct parser *p, long id)
{
    for (int i = 0; i < p->nseen; i++)
        if (p->seen_id[i] == id) return true;
    return false;
}

/* The checks that need the whole file. */
static int finish(struct parser *p)
{
    struct cluster_config *cfg = p->cfg;
    int n = p->nseen;
    if (!n)
        return fail(p, 0, "no nodes: add lines like 'node 0 address=HOST:PORT cpus=N memory=SIZE'");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (p->seen_id[i] == p->seen_id[j])
                return fail(p, p->seen_line[i], "node %ld is defined twice (first on line %d)",
                            p->seen_id[i], p->seen_line[j]);
    /* n distinct ids: one is out of 0..n-1 exactly when one of 0..n-1 is missing */
    for (int i = 0; i < n; i++) {
        if (p->seen_id[i] < n) continue;
        int missing = 0;
        while (has_id(p, missing))
            missing++;
        return fail(p, p->seen_line[i],
                    "node %ld is unknown: ids must be 0..%d (node %d is missing)", p->seen_id[i],
                    n - 1, missing);
    }
    int node_line[CLUSTER_MAX_NODES];
    cfg->nnodes = n;
    for (int i = 0; i < n; i++) {
        cfg->node[p->seen_id[i]] = p->seen[i];
        node_line[p->seen_id[i]] = p->seen_line[i];
    }
    int cpus = 0;
    uint64_t mem = 0;
    for (int i = 0; i < n; i++) {
        const struct cluster_node *a = &cfg->node[i];
        for (int j = 0; j < i; j++)
            if (a->port == cfg->node[j].port && !strcasecmp(a->host, cfg->node[j].host))
                return fail(p, node_line[i], "node %d has the same address as node %d (%s:%u)", i,
                            j, a->host, a->port);
        cpus += a->cpus;
        if (cpus > MAX_CPUS)
            return fail(p, node_line[i],
                        "node %d brings the vCPU total to %d; at most %d are supported", i, cpus,
                        MAX_CPUS);
        mem += a->memory;
        if (mem > MAX_MEM)
            return fail(p, node_line[i], "node %d brings guest memory to more than 4 PiB", i);
    }
    if (p->platform >= n)
        return fail(p, p->key_line[K_PLATFORM],
                    "platform node %ld is not defined (nodes are 0..%d)", p->platform, n - 1);
    cfg->platform = (int)p->platform;
    if (!cfg->secret_len)
        return fail(p, 0,
                    "no secret: add 'secret-file = PATH' (16..64 bytes, mode 600) or "
                    "'secret-hex = HEX'");
    cluster_config_layout(cfg);
    return 0;
}

static void defaults(struct cluster_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->connect_timeout_ms = CONNECT_MS;
    cfg->heartbeat_timeout_ms = HEARTBEAT_MS;
    cfg->numa = true;
}

int cluster_config_parse(const char *path, struct cluster_config *cfg, char *err, size_t errlen)
{
    struct parser p;
    memset(&p, 0, sizeof(p));
    p.path = path;
    p.err = err;
    p.errlen = errlen;
    p.cfg = cfg;
    defaults(cfg);

    FILE *f = fopen(path, "re");
    if (!f) return fail(&p, 0, "cannot read cluster file: %s", strerror(errno));
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&buf, &cap, f)) >= 0) {
        p.line++;
        if (memchr(buf, 0, (size_t)len))
            rc = fail(&p, p.line, "the line contains a NUL byte");
        else
            rc = parse_line(&p, buf);
    }
    if (!rc && ferror(f)) rc = fail(&p, 0, "cannot read cluster file: %s", strerror(errno));
    if (buf) explicit_bzero(buf, cap); /* may have held secret-hex */
    free(buf);
    fclose(f);
    if (!rc) rc = finish(&p);
    if (rc) explicit_bzero(cfg->secret, sizeof(cfg->secret));
    return rc;
}

/* The kernel's ephemeral port range (source ports of outgoing connections). */
static void ephemeral_ports(int *lo, int *hi)
{
    *lo = 32768, *hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (!f) return;
    int a, b;
    if (fscanf(f, "%d %d", &a, &b) == 2 && a > 0 && a <= b && b < 65536) *lo = a, *hi = b;
    fclose(f);
}

/* A socket bound to 127.0.0.1:port (0: any), or -1 with errno. Without
 * SO_REUSEADDR: two sockets that both have it may bind one port together while
 * neither listens, and the ports held here must be distinct. */
static int bind_loopback(uint16_t port, uint16_t *got)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *got = ntohs(sa.sin_port);
    return fd;
}

/* Ports are drawn at random from outside the ephemeral range and kept bound until
 * all n are chosen (so they are distinct), then closed for the nodes to listen on.
 * Not port 0's choice: that comes from the ephemeral range, where the nodes' own
 * dials to each other take their source ports, and one of those took a port a node
 * was about to listen on ("address in use", about one local start in a hundred).
 * Without room outside the range, port 0's choice it is. */
int cluster_pick_ports(int n, uint16_t *ports, char *err, size_t errlen)
{
    int fds[CLUSTER_MAX_NODES];
    int lo, hi, rc = 0, i;
    ephemeral_ports(&lo, &hi);
    bool below = lo - 1024 >= 4096; /* room below the range, else above it */
    int first = below ? 1024 : hi + 1, span = below ? lo - 1024 : 65535 - hi;
    for (i = 0; i < n; i++) {
        fds[i] = -1;
        for (int tries = 0; span >= 4096 && tries < 64 && fds[i] < 0; tries++) {
            uint32_t r = 0;
            if (getrandom(&r, sizeof(r), 0) != sizeof(r)) break;
            fds[i] = bind_loopback((uint16_t)(first + (int)(r % (uint32_t)span)), &ports[i]);
        }
        if (fds[i] < 0) fds[i] = bind_loopback(0, &ports[i]);
        if (fds[i] < 0) {
            rc = fail_local(err, errlen, "cannot pick a free port on 127.0.0.1: %s",
                            strerror(errno));
            break;
        }
    }
    while (i--)
        close(fds[i]);
    return rc;
}

int cluster_config_local(int n, int cpus, uint64_t memory, struct cluster_config *cfg, char *err,
                         size_t errlen)
{
    char b1[32], b2[32];
    if (n < 1 || n > CLUSTER_MAX_NODES)
        return fail_local(err, errlen, "--nodes %d is out of range 1..%d", n, CLUSTER_MAX_NODES);
    if (cpus < n)
        return fail_local(err, errlen,
                          "--cpus %d is fewer than --nodes %d: every node needs a vCPU", cpus, n);
    if (cpus > MAX_CPUS)
        return fail_local(err, errlen, "--cpus %d is more than the %d vCPUs supported", cpus,
                          MAX_CPUS);
    if (memory % PAGE_SIZE)
        return fail_local(err, errlen, "--memory %s is not a multiple of the 4 KiB page size",
                          fmt_size(memory, b1));
    if (memory < (uint64_t)n * MIN_NODE_MEM)
        return fail_local(err, errlen,
                          "--memory %s is less than 4 MiB per node (--nodes %d needs at least %s)",
                          fmt_size(memory, b1), n, fmt_size((uint64_t)n * MIN_NODE_MEM, b2));
    if (memory > MAX_MEM)
        return fail_local(err, errlen, "--memory %s is more than 4 PiB", fmt_size(memory, b1));

    defaults(cfg);
    cfg->nnodes = n;
    cfg->platform = 0;
    uint16_t ports[CLUSTER_MAX_NODES];
    if (cluster_pick_ports(n, ports, err, errlen)) return -1;
    uint64_t pages = memory / PAGE_SIZE;
    for (int i = 0; i < n; i++) {
        struct cluster_node *nd = &cfg->node[i];
        strcpy(nd->host, "127.0.0.1");
        nd->port = ports[i];
        nd->cpus = cpus / n + (i < cpus % n);
        nd->memory = (pages / (uint64_t)n + ((uint64_t)i < pages % (uint64_t)n)) * PAGE_SIZE;
    }
    size_t got = 0;
    while (got < LOCAL_SECRET) {
        ssize_t r = getrandom(cfg->secret + got, LOCAL_SECRET - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail_local(err, errlen, "getrandom: %s", strerror(errno));
        got += (size_t)r;
    }
    cfg->secret_len = LOCAL_SECRET;
    cluster_config_layout(cfg);
    return 0;
}

/* The platform node comes first: it runs the boot vCPU (vCPU 0) and is home to
 * low memory, where the firmware tables, the kernel and its boot data live. The
 * other nodes follow in id order. */
void cluster_config_layout(struct cluster_config *cfg)
{
    int cpu = 0;
    uint64_t off = 0;
    for (int k = -1; k < cfg->nnodes; k++) {
        int i = k < 0 ? cfg->platform : k;
        if (k >= 0 && i == cfg->platform) continue;
        if (i < 0 || i >= cfg->nnodes) continue;
        cfg->node[i].first_cpu = cpu;
        cfg->node[i].first_byte = off;
        cpu += cfg->node[i].cpus;
        off += cfg->node[i].memory;
    }
}

int cluster_total_cpus(const struct cluster_config *cfg)
{
    int t = 0;
    for (int i = 0; i < cfg->nnodes; i++)
        t += cfg->node[i].cpus;
    return t;
}

uint64_t cluster_total_memory(const struct cluster_config *cfg)
{
    uint64_t t = 0;
    for (int i = 0; i < cfg->nnodes; i++)
        t += cfg->node[i].memory;
    return t;
}

int cluster_node_of_cpu(const struct cluster_config *cfg, int cpu)
{
    for (int i = 0; i < cfg->nnodes; i++)
        if (cpu >= cfg->node[i].first_cpu && cpu - cfg->node[i].first_cpu < cfg->node[i].cpus)
            return i;
    return -1;
}

int cluster_node_of_ram(const struct cluster_config *cfg, uint64_t off)
{
    for (int i = 0; i < cfg->nnodes; i++)
        if (off >= cfg->node[i].first_byte && off - cfg->node[i].first_byte < cfg->node[i].memory)
            return i;
    return -1;
}

static const char *fmt_ms(int ms, char buf[24])
{
    if (ms % 1000)
        snprintf(buf, 24, "%dms", ms);
    else
        snprintf(buf, 24, "%d", ms / 1000);
    return buf;
}

int cluster_config_write(const struct cluster_config *cfg, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) return -1;
    if (fchmod(fd, 0600)) { /* an existing file keeps its mode through O_CREAT */
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    char hex[2 * CLUSTER_SECRET_MAX + 1], b[32];
    size_t slen = cfg->secret_len < CLUSTER_SECRET_MAX ? cfg->secret_len : CLUSTER_SECRET_MAX;
    for (size_t i = 0; i < slen; i++)
        snprintf(hex + 2 * i, 3, "%02x", cfg->secret[i]);
    hex[2 * slen] = 0;
    fprintf(f, "# unum cluster file (docs/CLUSTER.md)\n");
    fprintf(f, "secret-hex = %s\n", hex);
    explicit_bzero(hex, sizeof(hex));
    fprintf(f, "platform = %d\n", cfg->platform);
    if (cfg->transport[0]) fprintf(f, "transport = %s\n", cfg->transport);
    fprintf(f, "connect-timeout = %s\n", fmt_ms(cfg->connect_timeout_ms, b));
    fprintf(f, "heartbeat-timeout = %s\n", fmt_ms(cfg->heartbeat_timeout_ms, b));
    fprintf(f, "numa = %s\n", cfg->numa ? "on" : "off");
    for (int i = 0; i < cfg->nnodes; i++) {
        const struct cluster_node *nd = &cfg->node[i];
        fprintf(f, "node %d address=%s:%u cpus=%d memory=%s\n", i, nd->host, nd->port, nd->cpus,
                fmt_size(nd->memory, b));
    }
    int bad = ferror(f);
    if (fclose(f) || bad) {
        if (bad) errno = EIO;
        return -1;
    }
    return 0;
}
