/* dump.c — human-readable register dump (triple faults, debugging). */
#include <stdio.h>

#include "cpu/x86_state.h"

void x86_state_dump(FILE *f, const struct x86_state *s)
{
    static const char *names[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
    for (int i = 0; i < 16; i++)
        fprintf(f, "%s=%016llx%s", names[i], (unsigned long long)s->gpr[i],
                (i % 4 == 3) ? "\n" : " ");
    fprintf(f, "rip=%016llx rflags=%08llx\n", (unsigned long long)s->rip,
            (unsigned long long)s->rflags);
    static const char *segs[6] = {"es", "cs", "ss", "ds", "fs", "gs"};
    for (int i = 0; i < 6; i++)
        fprintf(f, "%s=%04x base=%016llx limit=%08x attr=%05x\n", segs[i], s->seg[i].sel,
                (unsigned long long)s->seg[i].base, s->seg[i].limit, s->seg[i].attr);
    fprintf(f, "tr=%04x base=%016llx gdt=%016llx/%04x idt=%016llx/%04x\n", s->tr.sel,
            (unsigned long long)s->tr.base, (unsigned long long)s->gdtr.base, s->gdtr.limit,
            (unsigned long long)s->idtr.base, s->idtr.limit);
    fprintf(f, "cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n",
            (unsigned long long)s->cr0, (unsigned long long)s->cr2, (unsigned long long)s->cr3,
            (unsigned long long)s->cr4, (unsigned long long)s->msr.efer);
}
