/* exec.c — the emulator's run loop: per-vCPU cache of decoded blocks, request
 * handling (interrupts, NMI, INIT/SIPI, stop, translation shoot-down) and the
 * vCPU life cycle behind struct cpu_impl. */
#include "cpu/emu/emu.h"
#include "cpu/emu/ops_fast.h"
#include "cpu/emu/sse_internal.h" /* lazy host MXCSR: emu_mxcsr_guest/emu_mxcsr_host */

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

uint8_t *emu_fetch_ptr(struct emu_cpu *c, uint64_t lin, uint64_t *gpa, int *avail);

static void blocks_flush(struct emu_cpu *c)
{
    emu_jc_flush(c); /* also bumps the chain epoch: chains into the arena die */
    memset(c->blk_hash, 0, sizeof(c->blk_hash));
    c->blk_used = 0;
}

/* succ_rip of an unused chain slot: non-canonical, so never equal to a RIP */
#define SUCC_NONE 0x8000000000000001ull

static inline unsigned blk_hash(uint64_t gpa)
{
    return (gpa ^ (gpa >> 12)) & (BLOCK_HASH_SIZE - 1);
}

static void mark_code_page(struct emu_cpu *c, uint64_t gpa)
{
    uint64_t page = gpa >> 12;
    if (!(atomic_load_explicit(&c->v.mem->page_flags[page], memory_order_relaxed) & MEM_PF_CODE))
        atomic_fetch_or_explicit(&c->v.mem->page_flags[page], MEM_PF_CODE, memory_order_seq_cst);
}

/* Ends a block of n instructions (len bytes) with its sentinel. */
static void block_seal(struct emu_block *b, int n, int len)
{
    struct insn *end = &b->insn[n];
    memset(end, 0, sizeof(*end));
    end->fop = FOP_END;
    end->off = (uint16_t)len;
    end->idx = (uint8_t)(n - 1);
    b->ninsn = (uint16_t)n;
}

/* Decodes an instruction that crosses into the next page (never cached). */
static struct emu_block *decode_crossing(struct emu_cpu *c, uint64_t lin, const uint8_t *h,
                                         int avail)
{
    static __thread union {
        struct emu_block b;
        uint8_t raw[sizeof(struct emu_block) + 2 * sizeof(struct insn)];
    } tmp;
    uint8_t buf[16];
    memcpy(buf, h, avail);
    int need = 15 - avail;
    uint64_t gpa2;
    int avail2;
    uint8_t *h2 = emu_fetch_ptr(c, lin + avail, &gpa2, &avail2);
    if (!h2) emu_gp(c, 0);
    memcpy(buf + avail, h2, need);
    int n = emu_decode(buf, 15, c->mode, &tmp.b.insn[0]);
    if (n <= 0) emu_gp(c, 0); /* longer than 15 bytes */
    static _Atomic uint32_t never_changes;
    tmp.b.insn[0].fop = emu_threaded_op(tmp.b.insn[0].fn);
    tmp.b.insn[0].idx = 0;
    tmp.b.insn[0].off = 0;
    block_seal(&tmp.b, 1, n);
    tmp.b.gpa = ~0ull; /* marks it: never cached, never chained */
    tmp.b.succ_rip[0] = tmp.b.succ_rip[1] = SUCC_NONE;
    tmp.b.gen_ptr = &never_changes;
    tmp.b.code_gen = 0;
    return &tmp.b;
}

static struct emu_block *block_decode(struct emu_cpu *c, uint64_t lin, uint64_t gpa,
                                      const uint8_t *h, int avail, uint16_t key)
{
    /* the generation first, then the flag, then the bytes (guest_mem.h, MEM_PF_CODE) */
    uint32_t gen = atomic_load_explicit(&c->v.mem->code_gen[gpa >> 12], memory_order_seq_cst);
    mark_code_page(c, gpa);
    size_t need = sizeof(struct emu_block) + (BLOCK_MAX_INSNS + 1) * sizeof(struct insn);
    if (c->blk_used + need > BLOCK_ARENA_SIZE) blocks_flush(c);
    struct emu_block *b = (struct emu_block *)(c->blk_arena + c->blk_used);
    int pos = 0, n = 0;
    while (n < BLOCK_MAX_INSNS) {
        struct insn *in = &b->insn[n];
        int len = emu_decode(h + pos, avail - pos, c->mode, in);
        if (len == 0) {
            if (n == 0) return decode_crossing(c, lin, h, avail);
            break;
        }
        if (len < 0) {
            if (n == 0) emu_gp(c, 0);
            break;
        }
        in->fop = emu_threaded_op(in->fn);
        in->idx = (uint8_t)n;
        in->off = (uint16_t)pos;
        if (in->fop >= FOP_jcc0 && in->fop <= FOP_jcc15 && n > 0) {
            /* compare-and-branch fusion with the flag producer just before */
            uint16_t f = emu_fused_op(in[-1].fop, in->fop - FOP_jcc0);
            if (f) in[-1].fop = f;
        }
        n++;
        pos += len;
        if (emu_optab[in->map][in->opc].flags & OPF_BRANCH || pos >= avail) break;
    }
    block_seal(b, n, pos);
    b->succ[0] = b->succ[1] = NULL;
    b->succ_rip[0] = b->succ_rip[1] = SUCC_NONE;
    b->gpa = gpa;
    b->key = key;
    b->code_gen = gen;
    b->gen_ptr = &c->v.mem->code_gen[gpa >> 12];
    c->blk_used += (sizeof(struct emu_block) + (n + 1) * sizeof(struct insn) + 15) & ~15ul;
    unsigned hh = blk_hash(gpa);
    b->next = c->blk_hash[hh];
    c->blk_hash[hh] = b;
    return b;
}

static struct emu_block *block_lookup(struct emu_cpu *c)
{
    uint64_t lin = c->mode == MODE_LONG64 ? c->s.rip : (uint32_t)(c->s.rip + c->s.seg[SEG_CS].base);
    uint64_t gpa;
    int avail;
    uint8_t *h = emu_fetch_ptr(c, lin, &gpa, &avail);
    if (!h) {
        fprintf(stderr, "unum: vcpu %d: instruction fetch from non-RAM gpa %#llx\n", c->v.id,
                (unsigned long long)gpa);
        c->stop_reason = VCPU_EXIT_SHUTDOWN;
        emu_raise(c, -1, 0, false);
    }
    uint16_t key = (uint16_t)c->mode;
    uint32_t gen = atomic_load_explicit(&c->v.mem->code_gen[gpa >> 12], memory_order_acquire);
    for (struct emu_block **pp = &c->blk_hash[blk_hash(gpa)]; *pp;) {
        struct emu_block *b = *pp;
        if (b->gpa == gpa && b->code_gen != gen) {
            *pp = b->next; /* stale: unlink so chains of old versions never build up */
            continue;
        }
        if (b->gpa == gpa && b->key == key) return b;
        pp = &b->next;
    }
    return block_decode(c, lin, gpa, h, avail, key);
}

static inline bool block_current(struct emu_cpu *c, const struct emu_block *b)
{
    return b->code_gen == atomic_load_explicit(b->gen_ptr, memory_order_acquire);
}

/* The jump cache skips the fetch translation and hash walk for hot targets. The
 * key includes CPL because the fetch permission check depends on it. */
static inline struct emu_block *block_find(struct emu_cpu *c)
{
    uint64_t rip =
        likely(c->mode == MODE_LONG64) ? c->s.rip : (uint32_t)(c->s.rip + c->s.seg[SEG_CS].base);
    uint32_t key = (uint32_t)c->mode | (uint32_t)c->cpl << 8;
    struct emu_jc_entry *j = &c->jc[(rip ^ (rip >> 10)) & (JC_SIZE - 1)];
    if (likely(j->rip == rip && j->key == key && j->b) && likely(block_current(c, j->b)))
        return j->b;
    struct emu_block *b = block_lookup(c);
    if (b->gpa != ~0ull) {
        j->rip = rip;
        j->key = key;
        j->b = b;
    }
    return b;
}

/* Next block after b: a chained successor when still valid, else a lookup whose
 * result is chained for next time. */
static inline struct emu_block *block_next(struct emu_cpu *c, struct emu_block *b)
{
    uint64_t rip = c->s.rip;
    /* succ_rip of an empty slot is non-canonical (SUCC_NONE): never a RIP */
    for (int k = 0; k < 2; k++) {
        struct emu_block *n = b->succ[k];
        if (b->succ_rip[k] == rip && b->succ_epoch[k] == c->chain_epoch && block_current(c, n))
            return n;
    }
    uint32_t epoch = c->chain_epoch;
    struct emu_block *n = block_find(c);
    /* a lookup may have flushed the arena (epoch bumped): b is then gone */
    if (epoch == c->chain_epoch && n->gpa != ~0ull && b->gpa != ~0ull) {
        int k = b->succ_epoch[0] == epoch && b->succ_rip[0] != SUCC_NONE ? 1 : 0;
        b->succ[k] = n;
        b->succ_rip[k] = rip;
        b->succ_epoch[k] = epoch;
    }
    return n;
}

/* A Jcc's chain slot k (0: not taken, 1: taken) missed: look the block up and
 * chain it there. */
static struct emu_block *block_chain_miss(struct emu_cpu *c, struct emu_block *b, int k)
{
    uint64_t rip = c->s.rip;
    uint32_t epoch = c->chain_epoch;
    struct emu_block *n = block_find(c);
    /* a lookup may have flushed the arena (epoch bumped): b is then gone */
    if (epoch == c->chain_epoch && n->gpa != ~0ull && b->gpa != ~0ull) {
        b->succ[k] = n;
        b->succ_rip[k] = rip;
        b->succ_epoch[k] = epoch;
    }
    return n;
}

/* Runs one instruction (interrupt shadow, single-step). */
static void run_one(struct emu_cpu *c)
{
    struct emu_block *b = block_find(c);
    const struct insn *in = &b->insn[0];
    c->next_rip = c->s.rip + in->len;
    in->fn(c, in);
    c->s.rip = c->next_rip;
    c->icount++;
    c->exit_block = false;
}

static void set_icount_stop(struct emu_cpu *c)
{
    uint64_t limit = c->icount_limit ? c->icount_limit : UINT64_MAX;
    c->icount_stop = limit < c->poll_at ? limit : c->poll_at;
}

/* run_blocks reached icount_stop: whether it returns to emu_run. A poll the
 * platform does not want now (most are: a look at a doorbell) is skipped in
 * place, because returning costs the block chain (emu_run re-enters through a
 * block lookup) every poll interval. A wanted one is remembered for
 * poll_outside, which does not ask again (the look may have side effects). */
static __attribute__((noinline)) bool run_blocks_stops(struct emu_cpu *c)
{
    if (c->icount_limit && c->icount >= c->icount_limit) return true;
    if (!c->v.ops->poll_wanted || c->v.ops->poll_wanted(c->v.ctx)) {
        c->poll_wanted = true;
        return true;
    }
    c->poll_at = c->icount + c->v.ops->poll_insns;
    set_icount_stop(c);
    return false;
}

/* Runs blocks until one ends abnormally (exit_block), a request is posted or the
 * instruction limit is reached. Threaded dispatch: the hottest handlers are
 * inlined here, each followed by its own indirect jump to the next instruction's
 * code, which predicts far better than one shared call site. A block ends with a
 * sentinel instruction (FOP_END), so there is no count check per instruction.
 * RIP: s.rip and next_rip are set from the block's start (`base`) and the
 * instruction's offset only before instructions that may fault, read them or
 * change them (kinds R, W, B and generic handlers; ops_fast.h); pure register
 * instructions skip that, and branches set s.rip themselves. */
/* no-crossjumping: GCC would otherwise merge the replicated dispatch jumps back
 * into one shared indirect jump, which is exactly what threading avoids */
__attribute__((optimize("no-crossjumping", "no-gcse"))) static void run_blocks(struct emu_cpu *c)
{
#define LABEL_ADDR(name, kind) &&L_##name,
#define FLABEL_ADDR(prod, cc)  &&LF_##prod##_##cc,
    static const void *const labels[FOP_COUNT] = {
        &&L_generic, &&L_end, EMU_THREADED_OPS(LABEL_ADDR) EMU_FUSED_OPS(FLABEL_ADDR)};
    struct emu_block *b = block_find(c);
    const struct insn *in = b->insn;
    uint64_t base = c->s.rip; /* rip of the block's first instruction */
    int chain_k;
#define DISPATCH() goto *labels[in->fop]
#define SYNC()                                                                                     \
    do {                                                                                           \
        c->s.rip = base + in->off;                                                                 \
        c->next_rip = base + in->off + in->len;                                                    \
    } while (0)
#define BODY_P(name)                                                                               \
    L_##name : name(c, in);                                                                        \
    in++;                                                                                          \
    DISPATCH();
#define BODY_R(name)                                                                               \
    L_##name : SYNC();                                                                             \
    name(c, in);                                                                                   \
    in++;                                                                                          \
    DISPATCH();
#define BODY_W(name)                                                                               \
    L_##name : SYNC();                                                                             \
    name(c, in);                                                                                   \
    if (unlikely(c->exit_block)) goto block_exit;                                                  \
    in++;                                                                                          \
    DISPATCH();
#define BODY_B(name)                                                                               \
    L_##name : SYNC();                                                                             \
    name(c, in);                                                                                   \
    if (unlikely(c->exit_block)) goto block_exit;                                                  \
    c->s.rip = c->next_rip;                                                                        \
    goto block_done;
/* Jcc (64-bit mode) at insn j: s.rip to the target or the next instruction, then
 * straight on to the chained block of that direction (chain slot 1 taken, 0 not),
 * each Jcc form with its own copy of this and so its own indirect jump */
#define JCC_TAIL(j, CC)                                                                            \
    do {                                                                                           \
        uint64_t nr_ = base + (j)->off + (j)->len;                                                 \
        int k_ = 0;                                                                                \
        if (emu_cond_inline(c, CC)) {                                                              \
            nr_ += (j)->imm;                                                                       \
            k_ = 1;                                                                                \
        }                                                                                          \
        in = (j);                                                                                  \
        struct emu_block *n_ = b->succ[k_];                                                        \
        /* a chained successor's rip is canonical (it was fetched from), and nr_,                  \
         * within 2 GiB of the canonical base, is never SUCC_NONE: a hit needs                     \
         * no canonical check (a miss checks before it looks up) */                                \
        if (likely(b->succ_rip[k_] == nr_ && b->succ_epoch[k_] == c->chain_epoch &&                \
                   block_current(c, n_))) {                                                        \
            c->s.rip = nr_;                                                                        \
            c->icount += in->idx + 1u;                                                             \
            if (unlikely(atomic_load_explicit(&c->v.requests, memory_order_relaxed)) ||            \
                unlikely(c->icount >= c->icount_stop && run_blocks_stops(c)))                      \
                return;                                                                            \
            b = n_;                                                                                \
            base = nr_;                                                                            \
            in = b->insn;                                                                          \
            DISPATCH();                                                                            \
        }                                                                                          \
        if (unlikely(!canonical(nr_))) {                                                           \
            c->s.rip = base + in->off;                                                             \
            c->next_rip = base + in->off + in->len;                                                \
            emu_gp(c, 0);                                                                          \
        }                                                                                          \
        c->s.rip = nr_;                                                                            \
        c->icount += in->idx + 1u;                                                                 \
        if (unlikely(atomic_load_explicit(&c->v.requests, memory_order_relaxed)) ||                \
            unlikely(c->icount >= c->icount_stop && run_blocks_stops(c)))                          \
            return;                                                                                \
        chain_k = k_;                                                                              \
        goto chain_miss;                                                                           \
    } while (0)
#define BODY_S(name)                                                                               \
    L_##name : if (unlikely(!sse_fast_ok(c))) goto L_generic;                                      \
    name##_fast(c, in);                                                                            \
    in++;                                                                                          \
    DISPATCH();
#define BODY_J(name)           L_##name : JCC_TAIL(in, FOP_##name - FOP_jcc0);
#define LABEL_BODY(name, kind) BODY_##kind(name)
#define FUSED_BODY(prod, cc)                                                                       \
    LF_##prod##_##cc : prod(c, in);                                                                \
    JCC_TAIL(in + 1, cc);

    DISPATCH();
L_generic : {
    uint64_t nr = base + in->off + in->len;
    c->s.rip = base + in->off;
    c->next_rip = nr;
    in->fn(c, in);
    if (unlikely(c->exit_block)) goto block_exit;
    if (unlikely(c->next_rip != nr)) {
        c->s.rip = c->next_rip; /* a branch (or a repeat) */
        goto block_done;
    }
    in++;
    DISPATCH();
}
    EMU_THREADED_OPS(LABEL_BODY)
    EMU_FUSED_OPS(FUSED_BODY)
L_end:
    c->s.rip = base + in->off;
    in--; /* the last instruction: icount below */
    goto block_done;
block_exit:
    c->s.rip = c->next_rip;
    c->icount += in->idx + 1u;
    c->exit_block = false;
    return;
block_done:
    c->icount += in->idx + 1u;
    if (unlikely(atomic_load_explicit(&c->v.requests, memory_order_relaxed))) return;
    if (unlikely(c->icount >= c->icount_stop) && run_blocks_stops(c)) return; /* emu_run stops */
    b = block_next(c, b);
    base = c->s.rip;
    in = b->insn;
    DISPATCH();
chain_miss:
    b = block_chain_miss(c, b, chain_k);
    base = c->s.rip;
    in = b->insn;
    DISPATCH();
#undef DISPATCH
#undef SYNC
#undef BODY_P
#undef BODY_R
#undef BODY_W
#undef BODY_B
#undef BODY_J
#undef BODY_S
#undef JCC_TAIL
#undef LABEL_BODY
#undef FUSED_BODY
#undef LABEL_ADDR
#undef FLABEL_ADDR
}

void emu_handle_flush(struct emu_cpu *c)
{
    atomic_fetch_and(&c->v.requests, ~VCPU_REQ_FLUSH);
    uint64_t gpa[VCPU_FLUSH_PAGES];
    pthread_mutex_lock(&c->v.flush_lock);
    uint64_t seq = atomic_load(&c->v.flush_seq);
    int n = c->v.flush_all ? -1 : c->v.flush_n;
    if (n > 0) memcpy(gpa, c->v.flush_gpa, (size_t)n * sizeof(gpa[0]));
    c->v.flush_n = 0;
    c->v.flush_all = false;
    pthread_mutex_unlock(&c->v.flush_lock);
    /* only the translations to the pages revoked: decoded code of those pages is
     * already stale by their code generation, and the linear-to-physical mapping
     * did not change */
    if (n < 0)
        emu_tlb_flush(c, true);
    else
        for (int i = 0; i < n; i++)
            emu_tlb_flush_gpa(c, gpa[i]);
    vcpu_ack_flush(&c->v, seq);
}

static void do_init(struct emu_cpu *c)
{
    uint64_t apic_base = c->s.msr.apic_base, efer_keep = 0;
    (void)efer_keep;
    x86_state_reset(&c->s);
    c->s.msr.apic_base = apic_base;
    c->lf_op = LF_NONE;
    emu_fpu_reset(c);
    emu_update_mode(c);
    emu_tlb_flush(c, true);
    c->wait_sipi = true;
    c->halted = false;
}

static void do_sipi(struct emu_cpu *c, uint8_t vector)
{
    c->s.seg[SEG_CS].sel = (uint16_t)(vector << 8);
    c->s.seg[SEG_CS].base = (uint64_t)vector << 12;
    c->s.rip = 0;
    c->wait_sipi = false;
    c->halted = false;
    emu_update_mode(c);
}

/* Handles posted requests at an instruction boundary. Returns true to leave run(). */
static bool handle_requests(struct emu_cpu *c, uint32_t req)
{
    if (req & VCPU_REQ_FLUSH) emu_handle_flush(c);
    if (req & VCPU_REQ_POLL) /* came after the vCPU woke: nothing to serve now */
        atomic_fetch_and(&c->v.requests, ~VCPU_REQ_POLL);
    if (req & VCPU_REQ_STOP) {
        atomic_fetch_and(&c->v.requests, ~VCPU_REQ_STOP);
        c->stop_reason = VCPU_EXIT_STOP;
        return true;
    }
    if (req & VCPU_REQ_INIT) {
        /* a SIPI posted together with the INIT came after it (the guest's
         * INIT-SIPI-SIPI sequence outran this thread): keep it for below */
        atomic_fetch_and(&c->v.requests, ~VCPU_REQ_INIT);
        do_init(c);
    }
    if (req & VCPU_REQ_SIPI) {
        atomic_fetch_and(&c->v.requests, ~VCPU_REQ_SIPI);
        if (c->wait_sipi) do_sipi(c, atomic_load(&c->v.sipi_vector));
    }
    if (c->wait_sipi) return false;
    if ((req & VCPU_REQ_NMI) && !c->nmi_blocked) {
        atomic_fetch_and(&c->v.requests, ~VCPU_REQ_NMI);
        c->halted = false;
        c->nmi_blocked = true;
        emu_deliver(c, EXC_NMI, 0, false, EV_NMI);
        return false;
    }
    if ((req & VCPU_REQ_IRQ) && (emu_rflags(c) & FL_IF)) {
        int vec = c->v.ops->irq_ack(c->v.ctx);
        if (vec >= 0) {
            c->halted = false;
            emu_deliver(c, vec, 0, false, EV_INTR);
        }
    }
    return false;
}

/* Around a blocking memory fault (the DSM fetching a page) the vCPU is out of
 * the guest, so that shoot-downs on this node do not wait for it; coming back it
 * drops the translations shot down meanwhile. */
static void emu_leave_guest(void *ctx)
{
    struct emu_cpu *c = ctx;
    vcpu_leave_guest(&c->v);
}

static void emu_enter_guest(void *ctx)
{
    struct emu_cpu *c = ctx;
    atomic_store_explicit(&c->v.in_guest, 1, memory_order_seq_cst);
    if (atomic_load(&c->v.requests) & VCPU_REQ_FLUSH) emu_handle_flush(c);
}

static uint64_t emu_guest_pc(void *ctx)
{
    return ((struct emu_cpu *)ctx)->s.rip;
}

/* The platform's poll hook, out of the guest (as around a blocking memory
 * fault) and with the host's MXCSR (it runs device and network code). */
static void poll_outside(struct emu_cpu *c)
{
    bool asked = c->poll_wanted;
    c->poll_wanted = false;
    c->poll_at = c->icount + c->v.ops->poll_insns;
    set_icount_stop(c);
    if (!asked && c->v.ops->poll_wanted && !c->v.ops->poll_wanted(c->v.ctx)) return;
    emu_mxcsr_host(c);
    vcpu_leave_guest(&c->v);
    c->v.ops->poll(c->v.ctx);
    emu_enter_guest(c);
    emu_mxcsr_guest(c);
}

static enum vcpu_exit_reason emu_run(struct vcpu *v)
{
    struct emu_cpu *c = emu_of(v);
    static __thread struct emu_cpu *hooked;
    if (hooked != c) {
        guest_mem_set_thread_hooks(&(struct guest_mem_thread_hooks){.leave = emu_leave_guest,
                                                                    .enter = emu_enter_guest,
                                                                    .guest_pc = emu_guest_pc,
                                                                    .ctx = c});
        hooked = c;
    }
    atomic_store_explicit(&v->in_guest, 1, memory_order_seq_cst);
    c->stop_run = false;
    emu_mxcsr_guest(c); /* MXCSR: the guest's on the host until `out` (sse_internal.h) */
    if (setjmp(c->exc_jmp)) {
        /* an exception (or a fatal condition) left an instruction */
        emu_mxcsr_guest(c); /* MXCSR: it may have left a stretch run under the host's */
        c->exit_block = false;
        if (c->stop_run) goto out;
        int vec = c->exc_vector;
        emu_deliver(c, vec, c->exc_err, c->exc_has_err, EV_EXC);
    }
    for (;;) {
        uint32_t req = atomic_load_explicit(&v->requests, memory_order_acquire);
        if (unlikely(req) && !c->irq_shadow) {
            emu_mxcsr_host(c); /* MXCSR: the host's for irq_ack (device code), INIT's reset */
            bool leave = handle_requests(c, req);
            emu_mxcsr_guest(c);
            if (leave) goto out;
        } else if (unlikely(req & (VCPU_REQ_FLUSH | VCPU_REQ_STOP))) {
            if (handle_requests(c, req & (VCPU_REQ_FLUSH | VCPU_REQ_STOP))) goto out;
        }
        if (unlikely(c->wait_sipi)) {
            c->stop_reason = VCPU_EXIT_WAIT_SIPI;
            goto out;
        }
        if (unlikely(c->halted)) {
            atomic_store(&v->halt_if, (c->s.rflags & FL_IF) != 0);
            c->stop_reason = VCPU_EXIT_HLT;
            goto out;
        }
        if (unlikely(c->irq_shadow)) {
            c->irq_shadow = false;
            run_one(c);
        } else if (unlikely(c->s.rflags & FL_TF)) {
            /* single-step: a #DB trap after each instruction that completes without
             * delivering an event itself */
            uint32_t before = c->n_delivered;
            run_one(c);
            if (!c->stop_run && c->n_delivered == before) {
                c->s.dr[6] |= 1u << 14; /* BS */
                emu_deliver(c, EXC_DB, 0, false, EV_EXC);
            }
        } else {
            run_blocks(c);
        }
        if (unlikely(c->stop_run)) goto out;
        if (unlikely(c->icount >= c->poll_at)) poll_outside(c);
        if (unlikely(c->icount_limit) && c->icount >= c->icount_limit) {
            c->stop_reason = VCPU_EXIT_STOP;
            goto out;
        }
    }
out:
    emu_mxcsr_host(c); /* MXCSR: the host's back, s.fpu.mxcsr gets the guest's flags */
    vcpu_leave_guest(v);
    return c->stop_reason;
}

static struct vcpu *tcache_vcpu(struct mem_tcache *tc)
{
    return (struct vcpu *)((char *)tc - offsetof(struct vcpu, tcache));
}

static uint64_t shootdown(struct mem_tcache *tc, uint64_t gpa)
{
    struct vcpu *v = tcache_vcpu(tc);
    pthread_mutex_lock(&v->flush_lock);
    if (v->flush_n < VCPU_FLUSH_PAGES)
        v->flush_gpa[v->flush_n++] = gpa;
    else
        v->flush_all = true;
    uint64_t seq = atomic_fetch_add(&v->flush_seq, 1) + 1;
    pthread_mutex_unlock(&v->flush_lock);
    vcpu_post(v, VCPU_REQ_FLUSH);
    return seq;
}

static void shootdown_wait(struct mem_tcache *tc, uint64_t seq)
{
    vcpu_wait_flush_ack(tcache_vcpu(tc), seq); /* the vCPU acknowledges between blocks */
}

void vcpu_tcache_init(struct vcpu *v)
{
    v->tcache.shootdown = shootdown;
    v->tcache.wait = shootdown_wait;
    pthread_mutex_init(&v->flush_lock, NULL);
    guest_mem_register_tcache(v->mem, &v->tcache);
}

static struct vcpu *emu_create(struct guest_mem *mem, int id, const struct cpu_exit_ops *ops,
                               void *ctx)
{
    emu_tables_init();
    struct emu_cpu *c = aligned_alloc(64, (sizeof(*c) + 63) & ~63ul);
    if (!c) return NULL;
    memset(c, 0, sizeof(*c));
    c->blk_arena = mmap(NULL, BLOCK_ARENA_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (c->blk_arena == MAP_FAILED) {
        free(c);
        return NULL;
    }
    c->v.impl = &emu_cpu_impl;
    c->v.id = id;
    c->v.mem = mem;
    c->v.ops = ops;
    c->v.ctx = ctx;
    x86_state_reset(&c->s);
    c->s.msr.apic_base = 0xfee00000ull | (1u << 11) | (id == 0 ? (1u << 8) : 0);
    emu_fpu_reset(c);
    emu_update_mode(c);
    emu_tlb_flush(c, true);
    c->poll_at = ops->poll && ops->poll_insns ? ops->poll_insns : UINT64_MAX;
    set_icount_stop(c);
    c->debug_ud = getenv("UNUM_DEBUG_UD") != NULL;
    vcpu_tcache_init(&c->v);
    return &c->v;
}

static void emu_destroy(struct vcpu *v)
{
    struct emu_cpu *c = emu_of(v);
    guest_mem_unregister_tcache(v->mem, &v->tcache);
    munmap(c->blk_arena, BLOCK_ARENA_SIZE);
    free(c);
}

static void emu_get_state(struct vcpu *v, struct x86_state *s)
{
    struct emu_cpu *c = emu_of(v);
    *s = c->s;
    s->rflags = emu_rflags(c);
}

static void emu_set_state(struct vcpu *v, const struct x86_state *s)
{
    struct emu_cpu *c = emu_of(v);
    c->s = *s;
    c->s.rflags = (s->rflags & 0x3f7fd7) | FL_1;
    c->lf_op = LF_NONE;
    c->halted = false;
    c->wait_sipi = false;
    emu_update_mode(c);
    emu_tlb_flush(c, true);
}

const struct cpu_impl emu_cpu_impl = {
    .name = "emu",
    .create = emu_create,
    .destroy = emu_destroy,
    .run = emu_run,
    .get_state = emu_get_state,
    .set_state = emu_set_state,
};

/* ---- emulator-specific accessors used by tests and the machine ---- */
uint64_t emu_icount(struct vcpu *v)
{
    return emu_of(v)->icount;
}
void emu_set_insn_limit(struct vcpu *v, uint64_t n)
{
    emu_of(v)->icount_limit = n;
    set_icount_stop(emu_of(v));
}
uint64_t emu_sample_rip(struct vcpu *v)
{
    return *(volatile uint64_t *)&emu_of(v)->s.rip;
}
