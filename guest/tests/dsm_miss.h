/* dsm_miss.h — body of the DSM miss latency probes (dsm_read_miss.S,
 * dsm_write_miss.S; bench/cluster.sh). The file including it defines
 * PROBE_ACCESS, the one instruction that touches the word at %ebx, and
 * PROBE_MSG, the line printed on success. The last vCPU touches one word in
 * every page of [4 MiB, RAM/2): on two nodes that range is homed on node 0
 * while the last vCPU runs on node 1, so every page is one remote miss
 * (`--stats` prints their latency). Other vCPUs halt. On one node it simply
 * touches local memory. */
    .code32
    .text
    .globl _start
_start:
    lea -1(%esi), %eax
    cmp %eax, %edi
    jne 9f
    mov $0x400000, %ebx
    mov %edx, %ecx
    shr $1, %ecx
1:
    PROBE_ACCESS
    add $4096, %ebx
    cmp %ecx, %ebx
    jb 1b
    mov $msg, %esi
2:  movb (%esi), %al
    test %al, %al
    jz 3f
    outb %al, $0xe9
    inc %esi
    jmp 2b
3:  xor %eax, %eax
    outl %eax, $0xf4
9:  cli
    hlt
    jmp 9b
msg: .asciz PROBE_MSG
