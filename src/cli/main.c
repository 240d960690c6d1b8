/* main.c — the unum command line: subcommand dispatch and argument checking.
 * Every user error is reported in one line with exit status 2 before any guest
 * code runs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/config.h"
#include "cluster/launch.h"
#include "cluster/version.h"
#include "machine/pc.h"
#include "machine/testvm.h"
#include "util/util.h"

static void usage_main(FILE *f)
{
    fputs("usage: unum <command> [options]\n"
          "\n"
          "unum runs one virtual machine whose vCPUs, memory and devices may span several\n"
          "computers: every computer runs a unum node (the x86-64 emulator), and the nodes\n"
          "keep guest memory coherent and route device accesses and interrupts between\n"
          "them, so that one unmodified guest sees one machine.\n"
          "\n"
          "commands:\n"
          "  run         boot a guest on this machine, on one node or a local cluster\n"
          "              of --nodes N processes (default: the built Debian guest)\n"
          "  node        run one node of a cluster described in a cluster file\n"
          "  testguest   run a freestanding test guest (flat binary) on the emulator\n"
          "  version     print the version\n"
          "\n"
          "Run 'unum <command> --help' for the options of a command.\n",
          f);
}

static void usage_testguest(FILE *f)
{
    fputs("usage: unum testguest [--cpus N] [--memory SIZE] [--nodes N] [--transport T]\n"
          "                      [--stats] IMAGE\n"
          "\n"
          "Loads IMAGE (a flat binary) at guest-physical 1 MiB and starts every vCPU there in\n"
          "flat 32-bit protected mode with EDI = vCPU index, ESI = vCPU count, EDX = memory\n"
          "size. The guest writes characters to port 0xe9 (console) and its exit status to\n"
          "port 0xf4, which stops the VM; unum exits with that status. A triple fault prints\n"
          "a register dump and exits with 125.\n"
          "\n"
          "  --cpus N        number of vCPUs (1..64, default 1)\n"
          "  --memory SIZE   guest RAM, e.g. 64M, 1G (default 64M)\n"
          "  --nodes N       spread the VM over N local node processes (vCPUs and memory\n"
          "                  split evenly; default 1)\n"
          "  --transport T   UCX transports between nodes (UCX_TLS, e.g. tcp; default: UCX's\n"
          "                  choice, shared memory between local processes)\n"
          "  --stats         print DSM and transport statistics of every node at the end\n"
          "  -h, --help      this help\n",
          f);
}

static void usage_run(FILE *f)
{
    fputs("usage: unum run [--cpus N] [--memory SIZE] [--nodes N] [--numa on|off]\n"
          "                [--kernel F] [--initrd F] [--append S] [--verbose]\n"
          "                [--transport T] [--show-routes] [--stats] [-- CMD...]\n"
          "\n"
          "Boots one VM on this machine: on one node, or with --nodes N on a local cluster\n"
          "of N node processes that together implement it (the guest sees N NUMA nodes).\n"
          "With -- CMD the guest runs CMD with /bin/sh -c, its\n"
          "output appears here and unum exits with CMD's status (125 if the VM stopped\n"
          "without one). Without CMD: an interactive shell on the serial console (the\n"
          "terminal is put in raw mode; Ctrl-A x quits); when stdin is not a terminal it\n"
          "is read as the script to run instead.\n"
          "\n"
          "  --cpus N        vCPUs of the whole VM (1..64, default 1, or one per node)\n"
          "  --memory SIZE   guest RAM of the whole VM, e.g. 256M, 2G (default 256M)\n"
          "  --nodes N       local node processes (1..16, default 1); vCPUs and memory are\n"
          "                  split evenly, node 0 is the platform node (devices, console)\n"
          "  --numa on|off   present each node as a NUMA node (SRAT/SLIT; default on)\n"
          "  --kernel F      bzImage (default: guest/vmlinuz next to this binary)\n"
          "  --initrd F      initramfs (default: guest/initrd.cpio next to this binary)\n"
          "  --append S      extra kernel command line\n"
          "  --verbose       show the kernel's boot messages\n"
          "  --transport T   UCX transports between nodes (UCX_TLS, e.g. tcp; default:\n"
          "                  UCX's choice, shared memory between local processes)\n"
          "  --show-routes   print the routing table (which node implements which port\n"
          "                  and MMIO range) once the cluster is assembled\n"
          "  --stats         at the end, print per-node DSM statistics (faults,\n"
          "                  invalidations, bytes, latency histogram, hot pages), transport\n"
          "                  counters, time skew and per-route forwarded exits\n"
          "  -h, --help      this help\n"
          "\n"
          "Exit status: the guest command's; 125 when the VM stopped without one (triple\n"
          "fault, reset, a node of the cluster lost); 2 for bad input.\n",
          f);
}

static void usage_node(FILE *f)
{
    fputs("usage: unum node --cluster FILE --id K [--kernel F] [--initrd F] [--append S]\n"
          "                 [--verbose] [--show-routes] [--stats] [-- CMD...]\n"
          "\n"
          "Runs node K of the cluster described in FILE (format: docs/CLUSTER.md): its\n"
          "vCPUs, the guest memory it is home to and, on the platform node, the devices and\n"
          "the console. Start every node of the cluster, on its own computer, in any order:\n"
          "each waits for the others (connect-timeout), authenticates them with the cluster\n"
          "secret, and then they boot one guest together. The guest options (kernel,\n"
          "initrd, command line, CMD) matter on the platform node only; it prints the\n"
          "guest's console and every node exits with the guest command's status.\n"
          "\n"
          "  --cluster FILE  the cluster file\n"
          "  --id K          which node of FILE this is\n"
          "  --kernel F, --initrd F, --append S, --verbose, --show-routes, --stats, -- CMD\n"
          "                  as for unum run\n"
          "  -h, --help      this help\n"
          "\n"
          "Exit status: the guest command's; 125 when the VM stopped without one or a node\n"
          "was lost; 2 for bad input (cluster file, unreachable peer, refused secret).\n",
          f);
}

/* Default guest assets live in build/guest/, next to build/unum. */
static char *asset_path(const char *name)
{
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return strdup(name);
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    size_t len = strlen(exe) + strlen(name) + 16;
    char *p = malloc(len);
    snprintf(p, len, "%s/guest/%s", exe, name);
    return p;
}

static char *join_args(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = calloc(1, len);
    for (int i = 0; i < argc; i++) {
        if (i) strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* Without a terminal there is nobody to type into the guest's shell: the input
 * is the script to run (empty input: nothing to do). */
static char *read_script(FILE *f)
{
    size_t cap = 4096, len = 0, n;
    char *s = malloc(cap);
    while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len == cap - 1) s = realloc(s, cap *= 2);
    }
    if (!s) die("out of memory reading the guest command from stdin");
    s[len] = 0;
    if (!len) {
        free(s);
        return strdup("true");
    }
    return s;
}

static int run_pc_node(const struct cluster_config *cl, int node, void *arg)
{
    struct pc_config cfg = *(struct pc_config *)arg;
    cfg.cluster = cl;
    cfg.node_id = node;
    return pc_run(&cfg);
}

static bool parse_onoff(const char *opt, const char *v)
{
    if (!strcmp(v, "on")) return true;
    if (!strcmp(v, "off")) return false;
    die("%s: '%s' must be on or off", opt, v);
}

static void set_transport(struct cluster_config *cl, const char *t)
{
    if (strlen(t) >= sizeof(cl->transport) ||
        strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_,^:-") != strlen(t))
        die("--transport: '%s' is not a UCX transport list (e.g. tcp, sm, rc)", t);
    snprintf(cl->transport, sizeof(cl->transport), "%s", t);
}

/* Options shared by `run` and `node`: the guest and what to show. */
enum { OPT_NODES = 256, OPT_NUMA, OPT_TRANSPORT, OPT_ROUTES, OPT_STATS, OPT_CLUSTER, OPT_ID };

static int cmd_run_or_node(int argc, char **argv, bool node_cmd)
{
    struct pc_config cfg = {.cpus = 0, .memory = 256ull << 20, .append = ""};
    static const struct option opts[] = {
        {"cpus", required_argument, NULL, 'c'},
        {"memory", required_argument, NULL, 'm'},
        {"kernel", required_argument, NULL, 'k'},
        {"initrd", required_argument, NULL, 'i'},
        {"append", required_argument, NULL, 'a'},
        {"verbose", no_argument, NULL, 'v'},
        {"nodes", required_argument, NULL, OPT_NODES},
        {"numa", required_argument, NULL, OPT_NUMA},
        {"transport", required_argument, NULL, OPT_TRANSPORT},
        {"show-routes", no_argument, NULL, OPT_ROUTES},
        {"stats", no_argument, NULL, OPT_STATS},
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"id", required_argument, NULL, OPT_ID},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    long n, nodes = 1, id = -1;
    bool numa = true, numa_given = false, memory_given = false;
    const char *transport = NULL, *cluster_file = NULL;
    void (*usage)(FILE *) = node_cmd ? usage_node : usage_run;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (node_cmd &&
            (o == 'c' || o == 'm' || o == OPT_NODES || o == OPT_NUMA || o == OPT_TRANSPORT))
            die("node: vCPUs, memory, NUMA and transport come from the cluster file");
        if (!node_cmd && (o == OPT_CLUSTER || o == OPT_ID))
            die("run: --cluster and --id belong to 'unum node' (see unum node --help)");
        switch (o) {
        case 'c':
            if (parse_int(optarg, 1, 64, &n) < 0)
                die("--cpus: '%s' is not a number between 1 and 64", optarg);
            cfg.cpus = (int)n;
            break;
        case 'm':
            if (parse_size(optarg, &cfg.memory) < 0 || cfg.memory % 4096 || !cfg.memory)
                die("--memory: '%s' is not a size in whole pages (e.g. 256M)", optarg);
            memory_given = true;
            break;
        case 'k': cfg.kernel = optarg; break;
        case 'i': cfg.initrd = optarg; break;
        case 'a': cfg.append = optarg; break;
        case 'v': cfg.verbose = true; break;
        case OPT_NODES:
            if (parse_int(optarg, 1, CLUSTER_MAX_NODES, &nodes) < 0)
                die("--nodes: '%s' is not a number between 1 and %d", optarg, CLUSTER_MAX_NODES);
            break;
        case OPT_NUMA:
            numa = parse_onoff("--numa", optarg);
            numa_given = true;
            break;
        case OPT_TRANSPORT: transport = optarg; break;
        case OPT_ROUTES: cfg.show_routes = true; break;
        case OPT_STATS: cfg.stats = true; break;
        case OPT_CLUSTER: cluster_file = optarg; break;
        case OPT_ID:
            if (parse_int(optarg, 0, CLUSTER_MAX_NODES - 1, &id) < 0)
                die("--id: '%s' is not a node id (0..%d)", optarg, CLUSTER_MAX_NODES - 1);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    (void)memory_given;
    if (optind < argc && strcmp(argv[optind - 1], "--") != 0)
        die("%s: unexpected argument '%s' (put the guest command after --)",
            node_cmd ? "node" : "run", argv[optind]);
    static struct cluster_config cl;
    char err[512];
    if (node_cmd) {
        if (!cluster_file) die("node: --cluster FILE is required (see unum node --help)");
        if (id < 0) die("node: --id K is required (see unum node --help)");
        if (cluster_config_parse(cluster_file, &cl, err, sizeof(err)) < 0) die("%s", err);
        if (id >= cl.nnodes)
            die("node: --id %ld is not in %s (nodes 0..%d)", id, cluster_file, cl.nnodes - 1);
        cfg.cpus = cluster_total_cpus(&cl);
        cfg.memory = cluster_total_memory(&cl);
    } else {
        if (!cfg.cpus) cfg.cpus = (int)nodes;
        if (nodes > 1) {
            if (cluster_config_local((int)nodes, cfg.cpus, cfg.memory, &cl, err, sizeof(err)) < 0)
                die("%s", err);
            cl.numa = numa;
            if (transport) set_transport(&cl, transport);
        } else if ((numa_given && !numa) || transport) {
            die("run: --numa and --transport need --nodes 2 or more");
        }
    }
    bool platform = node_cmd ? id == cl.platform : true;
    if (optind < argc)
        cfg.command = join_args(argc - optind, argv + optind);
    else if (!isatty(STDIN_FILENO) && platform)
        cfg.command = read_script(stdin); /* `echo CMD | unum run`: stdin is the script */
    char *kernel = cfg.kernel ? NULL : asset_path("vmlinuz");
    /* uncompressed: the guest spends no time inflating it */
    char *initrd = cfg.initrd ? NULL : asset_path("initrd.cpio");
    char *command = (char *)cfg.command;
    if (kernel) cfg.kernel = kernel;
    if (initrd) {
        cfg.initrd = initrd;
        cfg.own_initrd = true;
    }
    if (platform) pc_validate(&cfg);
    int status;
    if (node_cmd) {
        cfg.cluster = &cl;
        cfg.node_id = (int)id;
        status = pc_run(&cfg);
    } else if (nodes > 1) {
        status = launch_local(&cl, run_pc_node, &cfg);
    } else {
        status = pc_run(&cfg);
    }
    free(kernel);
    free(initrd);
    free(command);
    return status;
}

static int cmd_run(int argc, char **argv)
{
    return cmd_run_or_node(argc, argv, false);
}
static int cmd_node(int argc, char **argv)
{
    return cmd_run_or_node(argc, argv, true);
}

static int run_test_node(const struct cluster_config *cl, int node, void *arg)
{
    struct testvm_config cfg = *(struct testvm_config *)arg;
    cfg.cluster = cl;
    cfg.node_id = node;
    return testvm_run(&cfg);
}

static int cmd_testguest(int argc, char **argv)
{
    struct testvm_config cfg = {.cpus = 0, .memory = 64ull << 20};
    static const struct option opts[] = {
        {"cpus", required_argument, NULL, 'c'},
        {"memory", required_argument, NULL, 'm'},
        {"nodes", required_argument, NULL, OPT_NODES},
        {"transport", required_argument, NULL, OPT_TRANSPORT},
        {"stats", no_argument, NULL, OPT_STATS},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    long n, nodes = 1;
    const char *transport = NULL;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            if (parse_int(optarg, 1, 64, &n) < 0)
                die("--cpus: '%s' is not a number between 1 and 64", optarg);
            cfg.cpus = (int)n;
            break;
        case 'm':
            if (parse_size(optarg, &cfg.memory) < 0 || cfg.memory % 4096)
                die("--memory: '%s' is not a size in whole pages (e.g. 64M)", optarg);
            if (cfg.memory > (64ull << 30))
                die("--memory: %s is more than this machine allows (64G)", optarg);
            break;
        case OPT_NODES:
            if (parse_int(optarg, 1, CLUSTER_MAX_NODES, &nodes) < 0)
                die("--nodes: '%s' is not a number between 1 and %d", optarg, CLUSTER_MAX_NODES);
            break;
        case OPT_TRANSPORT: transport = optarg; break;
        case OPT_STATS: cfg.stats = true; break;
        case 'h': usage_testguest(stdout); return 0;
        default: usage_testguest(stderr); return 2;
        }
    }
    if (optind != argc - 1)
        die("testguest: expected exactly one IMAGE argument (see unum testguest --help)");
    cfg.image = argv[optind];
    struct stat st;
    if (stat(cfg.image, &st) < 0) die("test guest image %s not found", cfg.image);
    if (!cfg.cpus) cfg.cpus = (int)nodes;
    if (nodes == 1) return testvm_run(&cfg);
    static struct cluster_config cl;
    char err[512];
    if (cluster_config_local((int)nodes, cfg.cpus, cfg.memory, &cl, err, sizeof(err)) < 0)
        die("%s", err);
    if (transport) set_transport(&cl, transport);
    return launch_local(&cl, run_test_node, &cfg);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("unum %s\n", UNUM_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "node")) return cmd_node(argc - 1, argv + 1);
    if (!strcmp(cmd, "testguest")) return cmd_testguest(argc - 1, argv + 1);
    die("unknown command '%s' (see unum --help)", cmd);
}
