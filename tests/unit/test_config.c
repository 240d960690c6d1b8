/* Cluster configuration tests: every validation rule of the cluster file (each
 * failure is -1 and one line naming the file, the line and the problem), the
 * secret file's checks (permissions, size, trailing newline, relative paths),
 * comment and whitespace tolerance, write -> parse round trips, the local
 * cluster's split arithmetic and the vCPU / RAM ownership lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/config.h"

#define ERRLEN 512
#define MiB    (1ull << 20)
/* 32 bytes 00..1f */
#define SECRET "secret-hex = 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
#define NODE0  "node 0 address=10.0.0.1:7100 cpus=1 memory=4M\n"
#define NODE1  "node 1 address=10.0.0.2:7100 cpus=1 memory=4M\n"

static char cfg_path[64];
static char err[ERRLEN];

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A temporary file holding `data`; its name goes to `path` (at least 64 bytes). */
static void temp_file(char *path, const void *data, size_t len)
{
    strcpy(path, "/tmp/unum-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static int parse_text(const char *text, struct cluster_config *cfg)
{
    temp_file(cfg_path, text, strlen(text));
    memset(err, 0, sizeof(err));
    int rc = cluster_config_parse(cfg_path, cfg, err, sizeof(err));
    unlink(cfg_path);
    return rc;
}

/* Parsing `text` fails on `line` (0: no line, "FILE: ...") with every word in err. */
static void expect_fail_v(const char *text, int line, const char *first, va_list ap)
{
    struct cluster_config cfg;
    int rc = parse_text(text, &cfg);
    print_message("  -> %s\n", err);
    assert_int_equal(rc, -1);
    assert_null(strchr(err, '\n'));
    char prefix[96];
    if (line)
        snprintf(prefix, sizeof(prefix), "%s:%d: ", cfg_path, line);
    else
        snprintf(prefix, sizeof(prefix), "%s: ", cfg_path);
    if (strncmp(err, prefix, strlen(prefix)))
        fail_msg("'%s' does not start with '%s'", err, prefix);
    for (const char *w = first; w; w = va_arg(ap, const char *))
        if (!strstr(err, w)) fail_msg("'%s' does not contain '%s'", err, w);
}

static void expect_fail(const char *text, int line, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    expect_fail_v(text, line, first, ap);
    va_end(ap);
}

static void expect_ok(const char *text, struct cluster_config *cfg)
{
    int rc = parse_text(text, cfg);
    if (rc) fail_msg("unexpected error: %s", err);
}

static void test_minimal_defaults(void **state)
{
    struct cluster_config cfg;
    expect_ok(SECRET NODE0, &cfg);
    assert_int_equal(cfg.nnodes, 1);
    assert_int_equal(cfg.platform, 0);
    assert_string_equal(cfg.transport, "");
    assert_int_equal(cfg.connect_timeout_ms, 10000);
    assert_int_equal(cfg.heartbeat_timeout_ms, 2000);
    assert_true(cfg.numa);
    assert_int_equal(cfg.secret_len, 32);
    for (int i = 0; i < 32; i++)
        assert_int_equal(cfg.secret[i], i);
    assert_string_equal(cfg.node[0].host, "10.0.0.1");
    assert_int_equal(cfg.node[0].port, 7100);
    assert_int_equal(cfg.node[0].cpus, 1);
    assert_int_equal(cfg.node[0].memory, 4 * MiB);
    assert_int_equal(cfg.node[0].first_cpu, 0);
    assert_int_equal(cfg.node[0].first_byte, 0);
}

static void test_full_example(void **state)
{
    struct cluster_config cfg;
    expect_ok("# unum cluster file\n" SECRET
              "platform = 1                          # the node with the I/O APIC\n"
              "transport = tcp\n"
              "connect-timeout = 30\n"
              "heartbeat-timeout = 500ms\n"
              "numa = off\n"
              "node 0 address=10.0.0.1:7100 cpus=2 memory=256M\n"
              "node 1 address=node-b.example:7101 cpus=1 memory=512M   # second box\n",
              &cfg);
    assert_int_equal(cfg.nnodes, 2);
    assert_int_equal(cfg.platform, 1);
    assert_string_equal(cfg.transport, "tcp");
    assert_int_equal(cfg.connect_timeout_ms, 30000);
    assert_int_equal(cfg.heartbeat_timeout_ms, 500);
    assert_false(cfg.numa);
    assert_string_equal(cfg.node[1].host, "node-b.example");
    assert_int_equal(cfg.node[1].port, 7101);
    assert_int_equal(cfg.node[0].cpus, 2);
    assert_int_equal(cfg.node[1].memory, 512 * MiB);
    /* the platform node (1) comes first in the layout: vCPU 0, low memory */
    assert_int_equal(cfg.node[1].first_cpu, 0);
    assert_int_equal(cfg.node[1].first_byte, 0);
    assert_int_equal(cfg.node[0].first_cpu, 1);
    assert_int_equal(cfg.node[0].first_byte, 512 * MiB);
    assert_int_equal(cluster_node_of_cpu(&cfg, 0), 1);
    assert_int_equal(cluster_node_of_ram(&cfg, 0), 1);
    assert_int_equal(cluster_total_cpus(&cfg), 3);
    assert_int_equal(cluster_total_memory(&cfg), 768 * MiB);
}

static void test_comments_whitespace(void **state)
{
    struct cluster_config cfg;
    expect_ok("\n"
              "   # indented comment\r\n"
              "\t\n"
              "   \r\n"
              "##\n"
              "numa=off\r\n"
              "\tplatform\t=\t1\t# tabs\r\n"
              "  secret-hex   =   "
              "000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f   \n"
              "  node   1\taddress=b:2  cpus=3\t memory=8M   \r\n" /* out of order */
              "node 0 address=a:1 cpus=1 memory=4MiB#comment right after\n"
              "transport=sm,tcp", /* no final newline */
              &cfg);
    assert_int_equal(cfg.nnodes, 2);
    assert_int_equal(cfg.platform, 1);
    assert_false(cfg.numa);
    assert_string_equal(cfg.transport, "sm,tcp");
    assert_int_equal(cfg.secret[10], 10);
    assert_string_equal(cfg.node[0].host, "a");
    assert_int_equal(cfg.node[0].port, 1);
    assert_int_equal(cfg.node[0].memory, 4 * MiB);
    assert_string_equal(cfg.node[1].host, "b");
    assert_int_equal(cfg.node[1].cpus, 3);
    assert_int_equal(cfg.node[1].first_cpu, 0); /* platform first */
    assert_int_equal(cfg.node[1].first_byte, 0);
    assert_int_equal(cfg.node[0].first_cpu, 3);
    assert_int_equal(cfg.node[0].first_byte, 8 * MiB);
}

static void test_unknown_key(void **state)
{
    expect_fail(SECRET "foo = 1\n" NODE0, 2, "unknown key 'foo'", NULL);
    expect_fail(SECRET NODE0 "Platform = 0\n", 3, "unknown key 'Platform'", NULL); /* case */
    expect_fail(SECRET "node=1\n" NODE0, 2, "unknown key 'node'", NULL);
}

static void test_malformed_line(void **state)
{
    expect_fail(SECRET "platform 0\n" NODE0, 2, "malformed line starting 'platform'", "key = value",
                NULL);
    expect_fail("secret-hex 000102030405060708090a0b0c0d0e0f\n" NODE0, 1,
                "malformed line starting 'secret-hex'", NULL);
    assert_null(strstr(err, "0001")); /* no secret in messages */
    expect_fail(SECRET "= 3\n" NODE0, 2, "malformed line", NULL);
    expect_fail(SECRET NODE0 "numa\n", 3, "malformed line", NULL);
    expect_fail(SECRET NODE0 "platform =\n", 3, "platform has no value", NULL);
    expect_fail(SECRET NODE0 "platform = 0\nplatform = 0\n", 4, "platform is given twice",
                "first on line 3", NULL);
    expect_fail(SECRET "node\n", 2, "node line without an id", NULL);
}

static void test_node_id(void **state)
{
    expect_fail(SECRET "node x address=a:1 cpus=1 memory=4M\n", 2, "node id 'x' is not a number",
                NULL);
    expect_fail(SECRET "node -1 address=a:1 cpus=1 memory=4M\n", 2, "node id '-1'", NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=1 memory=4M\n"
                       "node 1 address=a:2 cpus=1 memory=4M\n"
                       "node 2 address=a:3 cpus=1 memory=4M\n"
                       "node 4 address=a:4 cpus=1 memory=4M\n",
                5, "node 4 is unknown: ids must be 0..3", "node 3 is missing", NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=1 memory=4M\n"
                       "node 1 address=a:2 cpus=1 memory=4M\n"
                       "node 1 address=a:3 cpus=1 memory=4M\n",
                4, "node 1 is defined twice", "first on line 3", NULL);
    expect_fail(SECRET "node 1 address=a:1 cpus=1 memory=4M\n", 2,
                "node 1 is unknown: ids must be 0..0", "node 0 is missing", NULL);
}

static void test_node_attributes(void **state)
{
    expect_fail(SECRET "node 0 address=a:1 cpus=1 memory=4M gpus=1\n", 2,
                "node 0: unknown attribute 'gpus'", NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=1 cpus=2 memory=4M\n", 2,
                "node 0: cpus is given twice", NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus = 1 memory=4M\n", 2,
                "node 0: 'cpus' is not key=value", NULL);
    expect_fail(SECRET "node 0 address=a:1 =1 memory=4M\n", 2, "node 0: '=1' is not key=value",
                NULL);
}

static void test_address(void **state)
{
    expect_fail(SECRET "node 0 cpus=1 memory=4M\n", 2, "node 0 has no address", NULL);
    expect_fail(SECRET "node 0 address=10.0.0.1 cpus=1 memory=4M\n", 2, "node 0",
                "address '10.0.0.1' has no port", NULL);
    expect_fail(SECRET "node 0 address=:7100 cpus=1 memory=4M\n", 2, "has no host", NULL);
    expect_fail(SECRET "node 0 address=a:0 cpus=1 memory=4M\n", 2, "port '0'", "1..65535", NULL);
    expect_fail(SECRET "node 0 address=a:65536 cpus=1 memory=4M\n", 2, "port '65536'", NULL);
    expect_fail(SECRET "node 0 address=a:x cpus=1 memory=4M\n", 2, "port 'x'", NULL);
    expect_fail(SECRET "node 0 address=a: cpus=1 memory=4M\n", 2, "port ''", NULL);
    expect_fail(SECRET "node 0 address=a/b:1 cpus=1 memory=4M\n", 2, "host in address", "'/'",
                NULL);
    char text[512], host[80];
    memset(host, 'h', 64);
    host[64] = 0;
    snprintf(text, sizeof(text), SECRET "node 0 address=%s:1 cpus=1 memory=4M\n", host);
    expect_fail(text, 2, "longer than 63 characters", NULL);
    host[63] = 0;
    snprintf(text, sizeof(text), SECRET "node 0 address=%s:65535 cpus=1 memory=4M\n", host);
    struct cluster_config cfg;
    expect_ok(text, &cfg);
    assert_string_equal(cfg.node[0].host, host);
    assert_int_equal(cfg.node[0].port, 65535);
}

static void test_duplicate_address(void **state)
{
    expect_fail(SECRET "node 0 address=10.0.0.1:7100 cpus=1 memory=4M\n"
                       "node 1 address=10.0.0.1:7101 cpus=1 memory=4M\n"
                       "node 2 address=10.0.0.1:7100 cpus=1 memory=4M\n",
                4, "node 2 has the same address as node 0 (10.0.0.1:7100)", NULL);
    expect_fail(SECRET "node 1 address=Box:7100 cpus=1 memory=4M\n"
                       "node 0 address=box:7100 cpus=1 memory=4M\n",
                2, "node 1 has the same address as node 0 (Box:7100)", NULL);
    struct cluster_config cfg; /* same host, other port: fine (network namespaces, one box) */
    expect_ok(SECRET "node 0 address=10.0.0.1:7100 cpus=1 memory=4M\n"
                     "node 1 address=10.0.0.1:7101 cpus=1 memory=4M\n",
              &cfg);
}

static void test_cpus(void **state)
{
    expect_fail(SECRET "node 0 address=a:1 memory=4M\n", 2, "node 0 has no cpus", NULL);
    expect_fail(SECRET NODE0 "node 1 address=b:1 cpus=0 memory=4M\n", 3, "node 1 has zero vCPUs",
                NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=two memory=4M\n", 2, "cpus 'two' is not a number",
                NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=65 memory=4M\n", 2, "cpus 65", "64", NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=40 memory=4M\n"
                       "node 1 address=a:2 cpus=30 memory=4M\n",
                3, "vCPU total to 70", "at most 64", NULL);
    struct cluster_config cfg;
    expect_ok(SECRET "node 0 address=a:1 cpus=34 memory=4M\n"
                     "node 1 address=a:2 cpus=30 memory=4M\n",
              &cfg);
    assert_int_equal(cluster_total_cpus(&cfg), 64);
}

static void test_memory(void **state)
{
    expect_fail(SECRET "node 0 address=a:1 cpus=1\n", 2, "node 0 has no memory", NULL);
    expect_fail(SECRET NODE0 NODE1 "node 3 address=a:1 cpus=1 memory=1001K\n"
                                   "node 2 address=a:2 cpus=1 memory=4M\n",
                4, "node 3: memory 1001K is not a multiple of the 4 KiB page size", NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=1 memory=2M\n", 2, "node 0: memory 2M",
                "below the 4 MiB minimum", NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=1 memory=4190208\n", 2, "below the 4 MiB minimum",
                NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=1 memory=lots\n", 2, "memory 'lots' is not a size",
                NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=1 memory=8P\n", 2, "memory '8P'", NULL);
    expect_fail(SECRET "node 0 address=a:1 cpus=1 memory=5T\n"
                       "node 1 address=a:2 cpus=1 memory=4096T\n",
                3, "more than 4 PiB", NULL);
    struct cluster_config cfg;
    expect_ok(SECRET "node 0 address=a:1 cpus=1 memory=4100K\n", &cfg);
    assert_int_equal(cfg.node[0].memory, 4100 * 1024);
}

static void test_too_many_nodes(void **state)
{
    char text[4096];
    int n = snprintf(text, sizeof(text), SECRET);
    for (int i = 0; i < 16; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "node %d address=10.0.0.%d:7100 cpus=4 memory=4M\n", i, i + 1);
    struct cluster_config cfg;
    expect_ok(text, &cfg);
    assert_int_equal(cfg.nnodes, 16);
    assert_int_equal(cluster_total_cpus(&cfg), 64);
    assert_int_equal(cfg.node[15].first_cpu, 60);
    snprintf(text + n, sizeof(text) - (size_t)n,
             "node 16 address=10.0.0.17:7100 cpus=1 memory=4M\n");
    expect_fail(text, 18, "more than 16 nodes", NULL);
}

static void test_platform(void **state)
{
    expect_fail(SECRET "platform = 5\n" NODE0 NODE1, 2, "platform node 5 is not defined", NULL);
    expect_fail(SECRET NODE0 NODE1 "platform = 2\n", 4, "platform node 2 is not defined", NULL);
    expect_fail(SECRET "platform = one\n" NODE0, 2, "platform 'one'", NULL);
    expect_fail(SECRET "platform = -1\n" NODE0, 2, "platform '-1'", NULL);
    struct cluster_config cfg;
    expect_ok(SECRET NODE0 NODE1 "platform = 1\n", &cfg);
    assert_int_equal(cfg.platform, 1);
}

static void test_no_nodes_no_secret(void **state)
{
    expect_fail(SECRET "# nothing else\n", 0, "no nodes", NULL);
    expect_fail("", 0, "no nodes", NULL);
    expect_fail(NODE0, 0, "no secret", "secret-file", "secret-hex", NULL);
}

static void test_unreadable_cluster_file(void **state)
{
    struct cluster_config cfg;
    const char *path = "/tmp/unum-config-does-not-exist/cluster.conf";
    assert_int_equal(cluster_config_parse(path, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    assert_non_null(strstr(err, "cannot read cluster file"));
}

static void test_secret_hex(void **state)
{
    char text[512];
    expect_fail("secret-hex = 0001020304050607080910111213141\n" NODE0, 1,
                "odd number of hex digits", NULL);
    expect_fail("secret-hex = 000102030405060708091011121314xx\n" NODE0, 1, "secret-hex", "'x'",
                "not a hex digit", NULL);
    expect_fail("secret-hex = 000102030405060708091011121314\n" NODE0, 1, "15 bytes", "at least 16",
                NULL);
    char hex[2 * 65 + 1];
    for (int i = 0; i < 130; i++)
        hex[i] = "0123456789abcdef"[i % 16];
    hex[130] = 0;
    snprintf(text, sizeof(text), "secret-hex = %s\n" NODE0, hex);
    expect_fail(text, 1, "65 bytes", "at most 64", NULL);
    hex[128] = 0;
    snprintf(text, sizeof(text), "secret-hex = %s\n" NODE0, hex);
    struct cluster_config cfg;
    expect_ok(text, &cfg);
    assert_int_equal(cfg.secret_len, 64);
    assert_int_equal(cfg.secret[1], 0x23);
    expect_ok("secret-hex = 00010203040506070809101112131415\n" NODE0, &cfg);
    assert_int_equal(cfg.secret_len, 16);
    assert_int_equal(cfg.secret[15], 0x15);
    expect_fail("secret-hex = 00010203040506070809101112131415\n"
                "secret-hex = 00010203040506070809101112131415\n" NODE0,
                2, "secret-hex is given twice", NULL);
}

/* Parses a cluster file naming `key_path`, expecting failure with the words. */
static void secret_file_fails(const char *key_path, const char *w1, const char *w2)
{
    char text[512];
    snprintf(text, sizeof(text), "# key\nsecret-file = %s\n" NODE0, key_path);
    expect_fail(text, 2, w1, w2, NULL);
}

static void test_secret_file(void **state)
{
    char key[64], text[512];
    struct cluster_config cfg;
    /* 32 random-looking bytes, one of them a NUL, no trailing newline */
    uint8_t bytes[32];
    for (int i = 0; i < 32; i++)
        bytes[i] = (uint8_t)(i * 37 + 5);
    bytes[7] = 0;
    temp_file(key, bytes, sizeof(bytes));
    snprintf(text, sizeof(text), "secret-file = %s   # comment\n" NODE0, key);
    expect_ok(text, &cfg);
    assert_int_equal(cfg.secret_len, 32);
    assert_memory_equal(cfg.secret, bytes, 32);

    /* a trailing newline is stripped */
    write_file(key, "passphrase-of-20-chr\n", 21);
    expect_ok(text, &cfg);
    assert_int_equal(cfg.secret_len, 20);
    assert_memory_equal(cfg.secret, "passphrase-of-20-chr", 20);

    /* 64 bytes + newline is the longest */
    char big[80];
    memset(big, 'k', sizeof(big));
    big[64] = '\n';
    write_file(key, big, 65);
    expect_ok(text, &cfg);
    assert_int_equal(cfg.secret_len, 64);
    write_file(key, big, 66); /* 64 'k', '\n', 'k' */
    secret_file_fails(key, "longer than 64 bytes", key);
    memset(big, 'k', sizeof(big));
    write_file(key, big, 65);
    secret_file_fails(key, "longer than 64 bytes", key);
    write_file(key, big, 80);
    secret_file_fails(key, "longer than 64 bytes", key);

    write_file(key, "", 0);
    secret_file_fails(key, "is empty", key);
    write_file(key, "\n", 1);
    secret_file_fails(key, "is empty", key);
    write_file(key, "short-secret\n", 13);
    secret_file_fails(key, "has 12 bytes", "at least 16");

    /* both kinds of secret */
    write_file(key, bytes, sizeof(bytes));
    snprintf(text, sizeof(text), "secret-file = %s\n" NODE0 SECRET, key);
    expect_fail(text, 3, "secret-file and secret-hex are both given", "line 1", NULL);
    snprintf(text, sizeof(text), SECRET NODE0 "secret-file = %s\n", key);
    expect_fail(text, 3, "both given", NULL);

    unlink(key);
    char msg[256];
    snprintf(msg, sizeof(msg), "cannot read secret file %s: %s", key, strerror(ENOENT));
    secret_file_fails(key, msg, NULL);
    secret_file_fails("/tmp", "/tmp is not a regular file", NULL);
}

static void test_secret_file_permissions(void **state)
{
    char key[64], text[512];
    struct cluster_config cfg;
    temp_file(key, "0123456789abcdef0123456789abcdef", 32);
    snprintf(text, sizeof(text), "secret-file = %s\n" NODE0, key);
    const mode_t bad[] = {0644, 0640, 0604, 0620, 0602, 0601, 0610};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(key, bad[i]), 0);
        char name[160];
        snprintf(name, sizeof(name), "secret file %s is readable by other users", key);
        secret_file_fails(key, name, "chmod 600");
    }
    assert_int_equal(chmod(key, 0400), 0);
    expect_ok(text, &cfg);
    assert_int_equal(chmod(key, 0600), 0);
    expect_ok(text, &cfg);
    assert_int_equal(cfg.secret_len, 32);
    unlink(key);
}

/* A relative secret-file is found next to the cluster file, not in the cwd. */
static void test_secret_file_relative(void **state)
{
    char dir[64] = "/tmp/unum-config-dir-XXXXXX", key[96], conf[96];
    assert_non_null(mkdtemp(dir));
    snprintf(key, sizeof(key), "%s/cluster.key", dir);
    snprintf(conf, sizeof(conf), "%s/cluster.conf", dir);
    write_file(key, "0123456789abcdef0123456789abcdef\n", 33);
    const char *text = "secret-file = cluster.key\n" NODE0;
    write_file(conf, text, strlen(text));
    struct cluster_config cfg;
    int rc = cluster_config_parse(conf, &cfg, err, sizeof(err));
    if (rc) fail_msg("%s", err);
    assert_int_equal(cfg.secret_len, 32);
    assert_memory_equal(cfg.secret, "0123456789abcdef0123456789abcdef", 32);
    unlink(key);
    assert_int_equal(cluster_config_parse(conf, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, key)); /* names the resolved path */
    unlink(conf);
    rmdir(dir);
}

static void test_transport(void **state)
{
    struct cluster_config cfg;
    expect_ok(SECRET NODE0 "transport = rc_x,sm,^cuda_copy\n", &cfg);
    assert_string_equal(cfg.transport, "rc_x,sm,^cuda_copy");
    expect_fail(SECRET NODE0 "transport = tcp;rm -rf\n", 3, "transport 'tcp;rm -rf' has ';'", NULL);
    expect_fail(SECRET NODE0 "transport = tcp sm\n", 3, "transport", "' '", NULL);
    expect_fail(SECRET NODE0 "transport = tcp,tcp,tcp,tcp,tcp,tcp,tcp,tcp,tcp\n", 3, "transport",
                "longer than 31", NULL);
}

static void test_timeouts_numa(void **state)
{
    struct cluster_config cfg;
    expect_ok(SECRET NODE0 "connect-timeout = 3s\nheartbeat-timeout = 100ms\n", &cfg);
    assert_int_equal(cfg.connect_timeout_ms, 3000);
    assert_int_equal(cfg.heartbeat_timeout_ms, 100);
    expect_ok(SECRET NODE0 "connect-timeout = 86400\nheartbeat-timeout = 2500ms\n", &cfg);
    assert_int_equal(cfg.connect_timeout_ms, 86400000);
    assert_int_equal(cfg.heartbeat_timeout_ms, 2500);
    const char *bad[] = {"0", "50ms", "x", "-1", "1.5", "s", "ms", "86401", "10m", " "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], word[64];
        snprintf(text, sizeof(text), SECRET NODE0 "heartbeat-timeout = %s\n", bad[i]);
        snprintf(word, sizeof(word), "heartbeat-timeout '%s'", bad[i]);
        if (strcmp(bad[i], " "))
            expect_fail(text, 3, word, "duration", NULL);
        else
            expect_fail(text, 3, "heartbeat-timeout has no value", NULL);
    }
    expect_fail(SECRET NODE0 "connect-timeout = soon\n", 3, "connect-timeout 'soon'", NULL);
    expect_ok(SECRET NODE0 "numa = on\n", &cfg);
    assert_true(cfg.numa);
    expect_fail(SECRET NODE0 "numa = yes\n", 3, "numa 'yes' must be on or off", NULL);
    expect_fail(SECRET NODE0 "numa = ON\n", 3, "numa 'ON'", NULL);
}

static void assert_same_config(const struct cluster_config *a, const struct cluster_config *b)
{
    assert_int_equal(a->nnodes, b->nnodes);
    assert_int_equal(a->platform, b->platform);
    assert_int_equal(a->secret_len, b->secret_len);
    assert_memory_equal(a->secret, b->secret, sizeof(a->secret));
    assert_string_equal(a->transport, b->transport);
    assert_int_equal(a->connect_timeout_ms, b->connect_timeout_ms);
    assert_int_equal(a->heartbeat_timeout_ms, b->heartbeat_timeout_ms);
    assert_int_equal(a->numa, b->numa);
    for (int i = 0; i < a->nnodes; i++) {
        assert_memory_equal(a->node[i].host, b->node[i].host, sizeof(a->node[i].host));
        assert_int_equal(a->node[i].port, b->node[i].port);
        assert_int_equal(a->node[i].cpus, b->node[i].cpus);
        assert_int_equal(a->node[i].memory, b->node[i].memory);
        assert_int_equal(a->node[i].first_cpu, b->node[i].first_cpu);
        assert_int_equal(a->node[i].first_byte, b->node[i].first_byte);
    }
}

static void round_trip(const struct cluster_config *a)
{
    char path[64];
    temp_file(path, "old", 3);
    assert_int_equal(chmod(path, 0644), 0); /* an existing file becomes 0600 too */
    assert_int_equal(cluster_config_write(a, path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct cluster_config b;
    int rc = cluster_config_parse(path, &b, err, sizeof(err));
    if (rc) fail_msg("%s", err);
    assert_same_config(a, &b);
    unlink(path);
    /* a fresh file */
    assert_int_equal(cluster_config_write(a, path), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    unlink(path);
}

static void test_round_trip(void **state)
{
    struct cluster_config a;
    assert_int_equal(cluster_config_local(3, 5, 100 * MiB + 3 * 4096, &a, err, sizeof(err)), 0);
    round_trip(&a);

    memset(&a, 0, sizeof(a));
    a.nnodes = 4;
    a.platform = 2;
    a.secret_len = 17;
    for (int i = 0; i < 17; i++)
        a.secret[i] = (uint8_t)(0xf0 + i);
    strcpy(a.transport, "sm,tcp");
    a.connect_timeout_ms = 1500;
    a.heartbeat_timeout_ms = 3000;
    a.numa = false;
    const uint64_t mem[4] = {4 * MiB, (1ull << 30) + 4096, 3ull << 40, 5 * MiB + 12288};
    for (int i = 0; i < 4; i++) {
        snprintf(a.node[i].host, sizeof(a.node[i].host), "host-%d.example.org", i);
        a.node[i].port = (uint16_t)(65535 - i);
        a.node[i].cpus = 16 - 3 * i;
        a.node[i].memory = mem[i];
    }
    cluster_config_layout(&a);
    round_trip(&a);

    assert_int_equal(cluster_config_write(&a, "/tmp/unum-config-does-not-exist/x"), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_local_split(void **state)
{
    struct cluster_config cfg;
    assert_int_equal(cluster_config_local(3, 4, 100 * MiB, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.nnodes, 3);
    assert_int_equal(cfg.node[0].cpus, 2);
    assert_int_equal(cfg.node[1].cpus, 1);
    assert_int_equal(cfg.node[2].cpus, 1);
    /* 25600 pages: 8534 + 8533 + 8533 */
    assert_int_equal(cfg.node[0].memory, 8534ull * 4096);
    assert_int_equal(cfg.node[1].memory, 8533ull * 4096);
    assert_int_equal(cfg.node[2].memory, 8533ull * 4096);
    assert_int_equal(cluster_total_memory(&cfg), 100 * MiB);
    assert_int_equal(cluster_total_cpus(&cfg), 4);
    assert_int_equal(cfg.node[1].first_cpu, 2);
    assert_int_equal(cfg.node[2].first_cpu, 3);
    assert_int_equal(cfg.node[1].first_byte, 8534ull * 4096);
    assert_int_equal(cfg.node[2].first_byte, 17067ull * 4096);
    assert_int_equal(cfg.platform, 0);
    assert_true(cfg.numa);
    assert_string_equal(cfg.transport, "");
    assert_int_equal(cfg.connect_timeout_ms, 10000);
    assert_int_equal(cfg.heartbeat_timeout_ms, 2000);
    assert_int_equal(cfg.secret_len, 32);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(cfg.node[i].host, "127.0.0.1");
        assert_true(cfg.node[i].port > 0);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(cfg.node[i].port, cfg.node[j].port);
    }
    struct cluster_config other;
    assert_int_equal(cluster_config_local(1, 1, 4 * MiB, &other, err, sizeof(err)), 0);
    assert_int_equal(other.nnodes, 1);
    assert_int_equal(other.node[0].memory, 4 * MiB);
    assert_true(memcmp(cfg.secret, other.secret, 32) != 0); /* fresh random secrets */

    /* 16 nodes, 64 vCPUs, 16 * 4 MiB + 15 pages: every node but the last gets one more page */
    assert_int_equal(cluster_config_local(16, 64, 64 * MiB + 15 * 4096, &cfg, err, sizeof(err)), 0);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(cfg.node[i].cpus, 4);
        assert_int_equal(cfg.node[i].memory, 4 * MiB + (i < 15 ? 4096 : 0));
        for (int j = 0; j < i; j++)
            assert_int_not_equal(cfg.node[i].port, cfg.node[j].port);
    }
    /* 7 vCPUs on 3 nodes: 3/2/2 */
    assert_int_equal(cluster_config_local(3, 7, 12 * MiB, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.node[0].cpus, 3);
    assert_int_equal(cfg.node[1].cpus, 2);
    assert_int_equal(cfg.node[2].cpus, 2);
    assert_int_equal(cfg.node[2].memory, 4 * MiB);
}

static void local_fails(int n, int cpus, uint64_t mem, const char *w1, const char *w2)
{
    struct cluster_config cfg;
    memset(err, 0, sizeof(err));
    assert_int_equal(cluster_config_local(n, cpus, mem, &cfg, err, sizeof(err)), -1);
    print_message("  -> %s\n", err);
    if (!strstr(err, w1)) fail_msg("'%s' does not contain '%s'", err, w1);
    if (w2 && !strstr(err, w2)) fail_msg("'%s' does not contain '%s'", err, w2);
}

static void test_local_errors(void **state)
{
    local_fails(0, 1, 64 * MiB, "--nodes 0", "1..16");
    local_fails(17, 64, 1ull << 30, "--nodes 17", "1..16");
    local_fails(4, 2, 64 * MiB, "--cpus 2 is fewer than --nodes 4: every node needs a vCPU", NULL);
    local_fails(2, 65, 64 * MiB, "--cpus 65", "64");
    local_fails(4, 4, 16 * MiB - 4096, "less than 4 MiB per node", "at least 16M");
    local_fails(2, 2, 64 * MiB + 1, "not a multiple of the 4 KiB page size", NULL);
    struct cluster_config cfg;
    assert_int_equal(cluster_config_local(4, 4, 16 * MiB, &cfg, err, sizeof(err)), 0);
}

static void test_node_of(void **state)
{
    struct cluster_config cfg;
    expect_ok(SECRET "node 0 address=a:1 cpus=2 memory=4M\n"
                     "node 1 address=a:2 cpus=1 memory=8M\n"
                     "node 2 address=a:3 cpus=3 memory=4M\n",
              &cfg);
    const int cpu_owner[] = {0, 0, 1, 2, 2, 2};
    for (int c = 0; c < 6; c++)
        assert_int_equal(cluster_node_of_cpu(&cfg, c), cpu_owner[c]);
    assert_int_equal(cluster_node_of_cpu(&cfg, -1), -1);
    assert_int_equal(cluster_node_of_cpu(&cfg, 6), -1);
    assert_int_equal(cluster_node_of_cpu(&cfg, 1000), -1);
    assert_int_equal(cluster_node_of_ram(&cfg, 0), 0);
    assert_int_equal(cluster_node_of_ram(&cfg, 4 * MiB - 1), 0);
    assert_int_equal(cluster_node_of_ram(&cfg, 4 * MiB), 1);
    assert_int_equal(cluster_node_of_ram(&cfg, 12 * MiB - 1), 1);
    assert_int_equal(cluster_node_of_ram(&cfg, 12 * MiB), 2);
    assert_int_equal(cluster_node_of_ram(&cfg, 16 * MiB - 1), 2);
    assert_int_equal(cluster_node_of_ram(&cfg, 16 * MiB), -1);
    assert_int_equal(cluster_node_of_ram(&cfg, UINT64_MAX), -1);
    assert_int_equal(cluster_total_memory(&cfg), 16 * MiB);
    assert_int_equal(cluster_total_cpus(&cfg), 6);

    /* layout recomputes after an edit */
    cfg.node[0].cpus = 1;
    cfg.node[0].memory = 8 * MiB;
    cluster_config_layout(&cfg);
    assert_int_equal(cfg.node[1].first_cpu, 1);
    assert_int_equal(cfg.node[2].first_byte, 16 * MiB);
    assert_int_equal(cluster_node_of_cpu(&cfg, 1), 1);
    assert_int_equal(cluster_node_of_ram(&cfg, 4 * MiB), 0);
}

/* Local-cluster ports: distinct, free (a node can listen on each), and outside the
 * kernel's ephemeral range, from which the nodes' own dials take source ports. */
static void test_pick_ports(void **state)
{
    (void)state;
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        assert_int_equal(fscanf(f, "%d %d", &lo, &hi), 2);
        fclose(f);
    }
    for (int round = 0; round < 20; round++) {
        uint16_t ports[CLUSTER_MAX_NODES];
        char err[128];
        assert_int_equal(cluster_pick_ports(CLUSTER_MAX_NODES, ports, err, sizeof(err)), 0);
        for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
            assert_true(ports[i] >= 1024);
            if (lo - 1024 >= 4096) assert_true(ports[i] < lo);
            for (int j = 0; j < i; j++)
                assert_int_not_equal(ports[i], ports[j]);
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            assert_true(fd >= 0);
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(ports[i])};
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
            assert_int_equal(listen(fd, 1), 0);
            close(fd);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_comments_whitespace),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_malformed_line),
        cmocka_unit_test(test_node_id),
        cmocka_unit_test(test_node_attributes),
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_duplicate_address),
        cmocka_unit_test(test_cpus),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_too_many_nodes),
        cmocka_unit_test(test_platform),
        cmocka_unit_test(test_no_nodes_no_secret),
        cmocka_unit_test(test_unreadable_cluster_file),
        cmocka_unit_test(test_secret_hex),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_secret_file_permissions),
        cmocka_unit_test(test_secret_file_relative),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_timeouts_numa),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_local_split),
        cmocka_unit_test(test_local_errors),
        cmocka_unit_test(test_node_of),
        cmocka_unit_test(test_pick_ports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
