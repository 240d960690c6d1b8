/* main.c — the differential tester's driver: options, the form registry, the
 * case loop and the report.
 *
 *   build/difftest [--cases N] [--filter SUBSTR]... [--seed S] [--jobs N] [--list]
 *                  [--verbose] [--one CASESEED] [--max-show N] [--help]
 *
 * The case budget is split over the selected forms by weight; UNUM_LONG=1 in
 * the environment multiplies it by 100 (make check-long).
 *
 * Forms run in worker processes (one per CPU by default) that take forms from a
 * shared queue. The parent only supervises: a worker whose case counter stops
 * moving (an emulator or native run that never returns, e.g. a deadlock) is
 * killed and the case reported as a HANG; a worker that dies (a crash in the
 * emulator) is reported as a CRASH; either way a new worker resumes the form at
 * the next case, so one wedged case cannot hide the results of the others.
 * Results do not depend on scheduling: every case's seed derives from the base
 * seed, the form name and the case index. */
#define _GNU_SOURCE
#include "difftest.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const dt_cat_name[CAT_COUNT] = {"int", "str", "ctl", "sse", "mmx", "x87", "seq"};

/* ---- registry ---- */
struct dt_form *dt_forms;
int dt_nforms;
static int forms_cap;

void dt_add(const struct dt_form *f)
{
    if (dt_nforms == forms_cap) {
        forms_cap = forms_cap ? forms_cap * 2 : 256;
        dt_forms = realloc(dt_forms, (size_t)forms_cap * sizeof(*dt_forms));
        if (!dt_forms) {
            perror("realloc");
            exit(2);
        }
    }
    dt_forms[dt_nforms++] = *f;
}

const char *dt_strdup_printf(const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    if (!s) {
        perror("vasprintf");
        exit(2);
    }
    return s;
}

/* ---- state shared between the supervisor and the workers ---- */
#define MAX_JOBS  16
#define HANG_SECS 2 /* no case finished for this long: the worker is stuck */
#define MAX_HANGS 3 /* per form; then the rest of the form is skipped */

enum { PH_IDLE, PH_NATIVE, PH_EMU };

struct form_res {
    uint64_t cases, bad, first_bad, faulted, alt;
    uint64_t hang_seed[MAX_HANGS];
    int hang_sig[MAX_HANGS]; /* 0: no progress (killed), else the signal it died of */
    int hang_phase[MAX_HANGS];
    int nhang;
    uint64_t budget;
};

struct worker {
    _Atomic uint64_t progress;
    _Atomic int form;      /* selection index being run, -1 none */
    _Atomic uint64_t kase; /* case index within the form */
    _Atomic uint64_t seed; /* its seed */
    _Atomic int phase;
    int resume_form; /* set by the parent before (re)spawning */
    uint64_t resume_case;
};

struct shared {
    _Atomic int next; /* next selection index to hand out */
    _Atomic int shown;
    pthread_mutex_t print_lock;
    struct worker w[MAX_JOBS];
    struct form_res r[];
};

static struct shared *sh;
static struct worker *me;

void dt_set_phase(int phase)
{
    if (me) atomic_store_explicit(&me->phase, phase, memory_order_relaxed);
}

/* ---- running cases ---- */
static struct {
    int nsel, *sel, max_show;
    uint64_t seed, one_seed;
    bool one, verbose;
    const char *argv0;
} opt;

static uint64_t hash_name(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
    return h;
}

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a ^ (b * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 29);
}

static struct dt_case cur;
static struct dt_result res_n, res_e;

static void run_case(const struct dt_form *f, uint64_t case_seed)
{
    struct dt_case *c = &cur;
    dt_case_init(c, f, case_seed);
    if (f->encode)
        c->org = (int)dt_below(c, 0xe00); /* see dt_place */
    else
        dt_pick_operands(c);
    if (f->setup) f->setup(c);
    if (f->encode) {
        f->encode(c);
        if (c->ncont == 0) {
            c->entry = c->org;
            c->cont[0] = c->org + c->len;
            c->ncont = 1;
        }
    } else {
        dt_encode_generic(c);
        dt_place(c);
    }
    dt_native_run(c, &res_n);
    dt_guest_run(c, &res_e);
}

/* Prints a case in full with one write, so workers do not interleave. */
static void show_case(const struct dt_form *f, uint64_t cs, int d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return;
    fprintf(m, "%s %s, case seed %#" PRIx64 "\n", d ? "MISMATCH" : "case", f->name, cs);
    dt_print_input(m, &cur);
    dt_print_result(m, "native", &res_n);
    dt_print_result(m, "emulator", &res_e);
    if (d) {
        fprintf(m, "  differences:\n");
        dt_compare(&cur, &res_n, &res_e, m);
        fprintf(m, "  reproduce: %s --filter '%s' --one %#" PRIx64 "\n", opt.argv0, f->name, cs);
    } else {
        dt_print_changes(m, &cur, &res_n);
    }
    fclose(m);
    pthread_mutex_lock(&sh->print_lock);
    fwrite(buf, 1, len, stdout);
    fflush(stdout);
    pthread_mutex_unlock(&sh->print_lock);
    free(buf);
}

static void run_form(int si, uint64_t first_case)
{
    const struct dt_form *f = &dt_forms[opt.sel[si]];
    struct form_res *r = &sh->r[si];
    uint64_t fseed = mix(opt.seed, hash_name(f->name));
    atomic_store(&me->form, si);
    for (uint64_t k = first_case; k < r->budget; k++) {
        uint64_t cs = opt.one ? opt.one_seed : mix(fseed, k + 1);
        atomic_store_explicit(&me->kase, k, memory_order_relaxed);
        atomic_store_explicit(&me->seed, cs, memory_order_relaxed);
        run_case(f, cs);
        int d = dt_compare(&cur, &res_n, &res_e, NULL);
        if (opt.one || (d && atomic_fetch_add(&sh->shown, 1) < opt.max_show)) show_case(f, cs, d);
        if (d && !r->bad++) r->first_bad = cs;
        /* native outcomes show that the input constraints produce the
         * intended mix (faults, branch directions) */
        r->faulted += res_n.exc != DT_EXC_NONE;
        r->alt += res_n.path > 0;
        r->cases++;
        atomic_fetch_add_explicit(&me->progress, 1, memory_order_relaxed);
    }
    atomic_store(&me->form, -1);
}

static _Noreturn void worker_main(int id)
{
    /* a worker must not outlive an interrupted run */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(1);
    me = &sh->w[id];
    if (dt_native_init() || dt_guest_init()) _exit(2);
    if (me->resume_form >= 0) run_form(me->resume_form, me->resume_case);
    for (;;) {
        int si = atomic_fetch_add(&sh->next, 1);
        if (si >= opt.nsel) _exit(0);
        run_form(si, 0);
    }
}

/* ---- supervisor ---- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static pid_t spawn(int id)
{
    fflush(stdout);
    fflush(stderr);
    pid_t p = fork();
    if (p == 0) worker_main(id);
    if (p < 0) {
        perror("fork");
        exit(2);
    }
    return p;
}

/* Runs all selected forms on `jobs` workers; returns false on a setup failure. */
static bool supervise(int jobs)
{
    pid_t pid[MAX_JOBS];
    uint64_t last[MAX_JOBS];
    double since[MAX_JOBS];
    bool killed[MAX_JOBS] = {false};
    int alive = 0;
    for (int i = 0; i < jobs; i++) {
        sh->w[i].form = -1;
        sh->w[i].resume_form = -1;
        pid[i] = spawn(i);
        last[i] = 0;
        since[i] = now_s();
        alive++;
    }
    while (alive) {
        int status;
        pid_t p;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
            int id = 0;
            while (id < jobs && pid[id] != p)
                id++;
            if (id == jobs) continue;
            alive--;
            pid[id] = -1;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
                fprintf(stderr, "difftest: worker setup failed\n");
                for (int k = 0; k < jobs; k++)
                    if (pid[k] > 0) kill(pid[k], SIGKILL);
                return false;
            }
            /* hung (killed by us) or crashed: record, resume the form after
             * the case that did it */
            struct worker *w = &sh->w[id];
            int si = atomic_load(&w->form);
            w->resume_form = -1;
            if (si >= 0) {
                struct form_res *r = &sh->r[si];
                if (r->nhang < MAX_HANGS) {
                    r->hang_seed[r->nhang] = atomic_load(&w->seed);
                    r->hang_sig[r->nhang] = killed[id]            ? 0
                                            : WIFSIGNALED(status) ? WTERMSIG(status)
                                                                  : -1;
                    r->hang_phase[r->nhang] = atomic_load(&w->phase);
                    r->nhang++;
                }
                r->bad++;
                if (r->nhang < MAX_HANGS && atomic_load(&w->kase) + 1 < r->budget) {
                    w->resume_form = si;
                    w->resume_case = atomic_load(&w->kase) + 1;
                }
            }
            killed[id] = false;
            if (w->resume_form >= 0 || atomic_load(&sh->next) < opt.nsel) {
                w->form = -1;
                w->phase = PH_IDLE;
                pid[id] = spawn(id);
                last[id] = atomic_load(&w->progress);
                since[id] = now_s();
                alive++;
            }
        }
        double t = now_s();
        for (int id = 0; id < jobs; id++) {
            if (pid[id] < 0 || killed[id]) continue;
            uint64_t pr = atomic_load(&sh->w[id].progress);
            if (pr != last[id]) {
                last[id] = pr;
                since[id] = t;
            } else if (t - since[id] > HANG_SECS && atomic_load(&sh->w[id].form) >= 0) {
                kill(pid[id], SIGKILL);
                killed[id] = true;
            }
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* ---- report ---- */

static int report(double secs)
{
    uint64_t cat_forms[CAT_COUNT] = {0}, cat_cases[CAT_COUNT] = {0}, cat_bad[CAT_COUNT] = {0};
    uint64_t total = 0, bad = 0;
    int bad_forms = 0, listed = 0;
    for (int si = 0; si < opt.nsel; si++) {
        const struct dt_form *f = &dt_forms[opt.sel[si]];
        const struct form_res *r = &sh->r[si];
        if (opt.verbose)
            printf("  %-60s %8" PRIu64 " cases %7" PRIu64 " faulted %7" PRIu64
                   " other-continuation %6" PRIu64 " mismatches\n",
                   f->name, r->cases, r->faulted, r->alt, r->bad);
        cat_forms[f->cat]++;
        cat_cases[f->cat] += r->cases;
        cat_bad[f->cat] += r->bad;
        total += r->cases;
        bad += r->bad;
        bad_forms += r->bad != 0;
    }
    if (bad_forms) printf("forms with mismatches (%d):\n", bad_forms);
    for (int si = 0; si < opt.nsel; si++) {
        const struct form_res *r = &sh->r[si];
        const char *name = dt_forms[opt.sel[si]].name;
        if (!r->bad) continue;
        if (opt.verbose || listed++ < 200) {
            printf("  %-44s %8" PRIu64 " mismatches", name, r->bad);
            if (r->bad > (uint64_t)r->nhang) printf(", first case seed %#" PRIx64, r->first_bad);
            printf("\n");
        }
        static const char *const phase[3] = {"", " in the native run", " in the emulator"};
        for (int h = 0; h < r->nhang; h++) {
            if (r->hang_sig[h] == 0)
                printf("    HANG%s: no progress for %d s, case seed %#" PRIx64 "\n",
                       phase[r->hang_phase[h] % 3], HANG_SECS, r->hang_seed[h]);
            else
                printf("    CRASH%s: worker died (%s %d), case seed %#" PRIx64 "\n",
                       phase[r->hang_phase[h] % 3], r->hang_sig[h] > 0 ? "signal" : "status",
                       r->hang_sig[h], r->hang_seed[h]);
        }
        if (r->nhang >= MAX_HANGS)
            printf("    (rest of the form skipped after %d hangs/crashes)\n", MAX_HANGS);
    }
    if (!opt.verbose && listed > 200) printf("  ... (--verbose lists all)\n");
    for (int k = 0; k < CAT_COUNT; k++)
        if (cat_forms[k])
            printf("  %-4s %5" PRIu64 " forms %10" PRIu64 " cases %8" PRIu64 " mismatches\n",
                   dt_cat_name[k], cat_forms[k], cat_cases[k], cat_bad[k]);
    printf("difftest: %d forms, %" PRIu64 " cases, %" PRIu64 " mismatches (%.1f s, %.0f cases/s)\n",
           opt.nsel, total, bad, secs, secs > 0 ? (double)total / secs : 0.0);
    return bad ? 1 : 0;
}

static void usage(FILE *o)
{
    fprintf(o,
            "usage: difftest [options]\n"
            "  --cases N       total case budget (default 1000000; x100 with UNUM_LONG=1)\n"
            "  --filter SUBSTR run only forms whose name contains SUBSTR (repeatable: any);\n"
            "                  a complete form name selects just that form\n"
            "  --seed S        base seed (default 0x756e756d)\n"
            "  --jobs N        worker processes (default: online CPUs, at most %d)\n"
            "  --one CASESEED  run one case of each selected form with this case seed, verbose\n"
            "  --list          list the selected forms and exit\n"
            "  --max-show N    print the first N mismatches in full (default 10)\n"
            "  --arch-fsw      compare only the x87 condition bits the manuals define\n"
            "                  (default: the whole FSW, as the host produces it)\n"
            "  --verbose       per-form counts\n"
            "  --help          this text\n",
            MAX_JOBS);
}

int main(int argc, char **argv)
{
    uint64_t cases = 1000000;
    bool list = false, cases_set = false;
    const char *filters[16];
    int nfilters = 0;
    long jobs = sysconf(_SC_NPROCESSORS_ONLN);
    opt.seed = 0x756e756d;
    opt.max_show = 10;
    opt.argv0 = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--cases") && v) {
            cases = strtoull(v, NULL, 0), cases_set = true, i++;
        } else if (!strcmp(a, "--filter") && v && nfilters < 16) {
            filters[nfilters++] = v, i++;
        } else if (!strcmp(a, "--seed") && v) {
            opt.seed = strtoull(v, NULL, 0), i++;
        } else if (!strcmp(a, "--jobs") && v) {
            jobs = strtol(v, NULL, 0), i++;
        } else if (!strcmp(a, "--one") && v) {
            opt.one_seed = strtoull(v, NULL, 0), opt.one = true, i++;
        } else if (!strcmp(a, "--max-show") && v) {
            opt.max_show = atoi(v), i++;
        } else if (!strcmp(a, "--arch-fsw")) {
            dt_arch_fsw = true;
        } else if (!strcmp(a, "--list")) {
            list = true;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            opt.verbose = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    const char *lng = getenv("UNUM_LONG");
    if (lng && *lng && strcmp(lng, "0") && !cases_set) cases *= 100;
    if (jobs < 1) jobs = 1;
    if (jobs > MAX_JOBS) jobs = MAX_JOBS;

    dt_forms_int();
    dt_forms_str();
    dt_forms_ctl();
    dt_forms_sse();
    dt_forms_x87();
    dt_forms_seq();

    /* selection; names are unique so a failing form can be re-run alone */
    for (int i = 0; i < dt_nforms; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(dt_forms[i].name, dt_forms[j].name)) {
                fprintf(stderr, "difftest: duplicate form name '%s'\n", dt_forms[i].name);
                return 2;
            }
    /* a filter equal to a form name selects that form only (names can be
     * substrings of others, e.g. "int/add m32,r32 [01]" of its lock variant) */
    bool exact[16] = {false};
    for (int k = 0; k < nfilters; k++)
        for (int i = 0; i < dt_nforms; i++)
            if (!strcmp(dt_forms[i].name, filters[k])) exact[k] = true;
    opt.sel = calloc((size_t)dt_nforms, sizeof(int));
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < dt_nforms; i++) {
            if (!(dt_forms[i].fl & F_LAST) != !pass) continue;
            bool ok = nfilters == 0;
            for (int k = 0; k < nfilters && !ok; k++)
                ok = exact[k] ? !strcmp(dt_forms[i].name, filters[k])
                              : strstr(dt_forms[i].name, filters[k]) != NULL;
            if (ok) opt.sel[opt.nsel++] = i;
        }
    if (list) {
        for (int i = 0; i < opt.nsel; i++)
            printf("%s\n", dt_forms[opt.sel[i]].name);
        printf("%d forms\n", opt.nsel);
        return 0;
    }
    if (!opt.nsel) {
        fprintf(stderr, "difftest: no form matches the filter\n");
        return 2;
    }

    size_t shsize = sizeof(struct shared) + (size_t)opt.nsel * sizeof(struct form_res);
    sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->print_lock, &ma);

    /* the budget is split by weight; cumulative rounding makes the parts add up */
    uint64_t wsum = 0, wcum = 0;
    for (int si = 0; si < opt.nsel; si++)
        wsum += dt_forms[opt.sel[si]].weight ? dt_forms[opt.sel[si]].weight : 1;
    for (int si = 0; si < opt.nsel; si++) {
        uint64_t w = dt_forms[opt.sel[si]].weight ? dt_forms[opt.sel[si]].weight : 1;
        sh->r[si].budget = opt.one ? 1
                                   : (uint64_t)((unsigned __int128)cases * (wcum + w) / wsum -
                                                (unsigned __int128)cases * wcum / wsum);
        wcum += w;
    }
    if (opt.one || jobs > opt.nsel) jobs = opt.one ? 1 : opt.nsel;

    dt_gen_init(opt.seed);
    printf("difftest: seed %#" PRIx64 ", %d forms selected, budget %" PRIu64
           " cases, %ld workers\n",
           opt.seed, opt.nsel, opt.one ? (uint64_t)opt.nsel : cases, jobs);
    double t0 = now_s();
    if (!supervise((int)jobs)) return 2;
    return report(now_s() - t0);
}
