/* main.c — the unum command line: subcommand dispatch and argument checking.
 * Every user error is reported in one line with exit status 2 before any guest
 * code runs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "machine/testvm.h"
#include "util/util.h"

#define UNUM_VERSION "0.1.0"

static void usage_main(FILE *f)
{
    fputs("usage: unum <command> [options]\n"
          "\n"
          "unum runs one virtual machine whose vCPUs, memory and devices may span several\n"
          "computers. This build provides the x86-64 emulator and its test machine.\n"
          "\n"
          "commands:\n"
          "  testguest   run a freestanding test guest (flat binary) on the emulator\n"
          "  version     print the version\n"
          "\n"
          "Run 'unum <command> --help' for the options of a command.\n",
          f);
}

static void usage_testguest(FILE *f)
{
    fputs("usage: unum testguest [--cpus N] [--memory SIZE] [--max-insns N] IMAGE\n"
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
    if (stat(cfg.image, &st) < 0)
        die("test guest image %s not found", cfg.image);
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
    if (!strcmp(cmd, "testguest"))
        return cmd_testguest(argc - 1, argv + 1);
    die("unknown command '%s' (see unum --help)", cmd);
}
