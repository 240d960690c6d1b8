#!/usr/bin/env python3
"""Interactive console test: `unum run` without a command gives a shell on the
serial console in a pseudo-terminal; typed input reaches it, Ctrl-A x quits with
status 0, and the terminal is back in cooked mode afterwards."""
import os
import pty
import select
import sys
import termios
import time

unum = sys.argv[1] if len(sys.argv) > 1 else "build/unum"
pid, fd = pty.fork()
if pid == 0:
    os.execv(unum, [unum, "run", "--memory", "256M"])

buf = b""


def read_until(token, timeout):
    global buf
    end = time.time() + timeout
    while time.time() < end:
        if token in buf:
            return True
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return token in buf


def fail(msg):
    print("FAIL interactive:", msg)
    print(repr(buf[-400:]))
    try:
        os.kill(pid, 9)
    except OSError:
        pass
    sys.exit(1)


if not read_until(b"/ # ", 120):
    fail("no shell prompt")
raw = termios.tcgetattr(fd)
if raw[3] & (termios.ICANON | termios.ECHO):
    fail("terminal not in raw mode while the guest runs")
os.write(fd, b"echo answer-$((6*7))\r")
if not read_until(b"answer-42", 30):
    fail("typed command did not run")
os.write(fd, b"\x01x")
end = time.time() + 30
status = None
while time.time() < end:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
    read_until(b"\x00", 0.2)
if status is None:
    fail("Ctrl-A x did not quit")
if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
    fail("exit status %r" % status)
cooked = termios.tcgetattr(fd)
if not (cooked[3] & termios.ICANON and cooked[3] & termios.ECHO):
    fail("terminal left in raw mode")
print("PASS interactive shell: input reaches the guest, Ctrl-A x quits, terminal restored")
