/* hello.S — the smallest test guest: no common.h, no long mode. The machine
 * starts us in flat 32-bit protected mode at 1 MiB; print a line on the debug
 * console (port 0xe9) and report exit status 0 on port 0xf4.
 *
 * # expect: hello from unum
 */
    .section .text.boot, "ax"
    .code32
    .globl _start
_start:
    mov $msg, %esi
1:  lodsb                       /* DS is flat, so the linked address works */
    test %al, %al
    jz 2f
    outb %al, $0xe9
    jmp 1b
2:  xor %eax, %eax
    outl %eax, $0xf4            /* stops the VM with status 0 */
3:  hlt
    jmp 3b

    .section .rodata
msg: .asciz "hello from unum\n"
    .section .note.GNU-stack, "", @progbits
