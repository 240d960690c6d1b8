/* main.c — the unum command line: subcommand dispatch and argument checking.
 * Every user error is reported in one line with exit status 2 before any guest
 * code runs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/pc.h"
#include "machine/testvm.h"
#include "util/util.h"

#define UNUM_VERSION "0.1.0"

static void usage_main(FILE *f)
{
    fputs("usage: unum <command> [options]\n"
          "\n"
          "unum runs one virtual machine whose vCPUs, memory and devices may span several\n"
          "computers. This build runs one node: the x86-64 emulator and a PC platform.\n"
          "\n"
          "commands:\n"
          "  run         boot a guest (default: the built Debian kernel and initramfs)\n"
          "  testguest   run a freestanding test guest (flat binary) on the emulator\n"
          "  version     print the version\n"
          "\n"
          "Run 'unum <command> --help' for the options of a command.\n",
          f);
}

static void usage_testguest(FILE *f)
{
    fputs("usage: unum testguest [--cpus N] [--memory SIZE] IMAGE\n"
          "\n"
          "Loads IMAGE (a flat binary) at guest-physical 1 MiB and starts every vCPU there in\n"
          "flat 32-bit protected mode with EDI = vCPU index, ESI = vCPU count, EDX = memory\n"
          "size. The guest writes characters to port 0xe9 (console) and its exit status to\n"
          "port 0xf4, which stops the VM; unum exits with that status. A triple fault prints\n"
          "a register dump and exits with 125.\n"
          "\n"
          "  --cpus N        number of vCPUs (1..64, default 1)\n"
          "  --memory SIZE   guest RAM, e.g. 64M, 1G (default 64M)\n"
          "  -h, --help      this help\n",
          f);
}

static void usage_run(FILE *f)
{
    fputs("usage: unum run [--cpus N] [--memory SIZE] [--kernel F] [--initrd F] [--append S]\n"
          "                [--verbose] [-- CMD...]\n"
          "\n"
          "Boots one VM on this node. With -- CMD the guest runs CMD with /bin/sh -c, its\n"
          "output appears here and unum exits with CMD's status (125 if the VM stopped\n"
          "without one). Without CMD: an interactive shell on the serial console (the\n"
          "terminal is put in raw mode; Ctrl-A x quits); when stdin is not a terminal it\n"
          "is read as the script to run instead.\n"
          "\n"
          "  --cpus N        vCPUs (1..64, default 1)\n"
          "  --memory SIZE   guest RAM, e.g. 256M, 2G (default 256M)\n"
          "  --kernel F      bzImage (default: guest/vmlinuz next to this binary)\n"
          "  --initrd F      initramfs (default: guest/initrd.cpio next to this binary)\n"
          "  --append S      extra kernel command line\n"
          "  --verbose       show the kernel's boot messages\n"
          "  -h, --help      this help\n",
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
        if (len == cap - 1)
            s = realloc(s, cap *= 2);
    }
    if (!s)
        die("out of memory reading the guest command from stdin");
    s[len] = 0;
    if (!len) {
        free(s);
        return strdup("true");
    }
    return s;
}

static int cmd_run(int argc, char **argv)
{
    struct pc_config cfg = {.cpus = 1, .memory = 256ull << 20, .append = ""};
    static const struct option opts[] = {
        {"cpus", required_argument, NULL, 'c'},   {"memory", required_argument, NULL, 'm'},
        {"kernel", required_argument, NULL, 'k'}, {"initrd", required_argument, NULL, 'i'},
        {"append", required_argument, NULL, 'a'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {0, 0, 0, 0},
    };
    int o;
    long n;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            if (parse_int(optarg, 1, 64, &n) < 0)
                die("--cpus: '%s' is not a number between 1 and 64", optarg);
            cfg.cpus = (int)n;
            break;
        case 'm':
            if (parse_size(optarg, &cfg.memory) < 0 || cfg.memory % 4096 || !cfg.memory)
                die("--memory: '%s' is not a size in whole pages (e.g. 256M)", optarg);
            break;
        case 'k': cfg.kernel = optarg; break;
        case 'i': cfg.initrd = optarg; break;
        case 'a': cfg.append = optarg; break;
        case 'v': cfg.verbose = true; break;
        case 'h': usage_run(stdout); return 0;
        default: usage_run(stderr); return 2;
        }
    }
    if (optind < argc && strcmp(argv[optind - 1], "--") != 0)
        die("run: unexpected argument '%s' (put the guest command after --)", argv[optind]);
    if (optind < argc)
        cfg.command = join_args(argc - optind, argv + optind);
    else if (!isatty(STDIN_FILENO))
        cfg.command = read_script(stdin); /* `echo CMD | unum run`: stdin is the script */
    char *kernel = cfg.kernel ? NULL : asset_path("vmlinuz");
    /* uncompressed: the guest spends no time inflating it */
    char *initrd = cfg.initrd ? NULL : asset_path("initrd.cpio");
    char *command = (char *)cfg.command;
    if (kernel) cfg.kernel = kernel;
    if (initrd) cfg.initrd = initrd;
    pc_validate(&cfg);
    int status = pc_run(&cfg);
    free(kernel);
    free(initrd);
    free(command);
    return status;
}

static int cmd_testguest(int argc, char **argv)
{
    struct testvm_config cfg = {.cpus = 1, .memory = 64ull << 20};
    static const struct option opts[] = {
        {"cpus", required_argument, NULL, 'c'},
        {"memory", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    long n;
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
        case 'h': usage_testguest(stdout); return 0;
        default: usage_testguest(stderr); return 2;
        }
    }
    if (optind != argc - 1)
        die("testguest: expected exactly one IMAGE argument (see unum testguest --help)");
    cfg.image = argv[optind];
    struct stat st;
    if (stat(cfg.image, &st) < 0) die("test guest image %s not found", cfg.image);
    return testvm_run(&cfg);
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
    if (!strcmp(cmd, "testguest")) return cmd_testguest(argc - 1, argv + 1);
    die("unknown command '%s' (see unum --help)", cmd);
}
