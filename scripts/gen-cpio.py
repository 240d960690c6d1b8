#!/usr/bin/env python3
"""gen-cpio.py — write a cpio "newc" archive (the initramfs format) from a listing.

Usage: gen-cpio.py LISTING OUTPUT        (LISTING may be '-' for stdin)

The listing uses the format of the kernel's usr/gen_init_cpio, one entry per line:
    dir   <name> <mode> <uid> <gid>
    file  <name> <location> <mode> <uid> <gid>
    slink <name> <target> <mode> <uid> <gid>
    nod   <name> <mode> <uid> <gid> <c|b> <major> <minor>
Modes are octal; '#' starts a comment. Why our own writer rather than `cpio -o`:
device nodes (/dev/console) go into the archive without mknod or root, owners are
always 0:0, and every mtime is SOURCE_DATE_EPOCH (default 0), so the same inputs give
a byte-identical archive.
"""
import os
import stat
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src = sys.stdin if sys.argv[1] == "-" else open(sys.argv[1])
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    out = bytearray()
    ino = 0

    def entry(name, mode, uid, gid, nlink, data=b"", rdev=(0, 0)):
        nonlocal ino
        ino += 1
        name = name.lstrip("/").encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            ino, mode, uid, gid, nlink, mtime, len(data),
            0, 0, rdev[0], rdev[1], len(name), 0))
        out.extend(hdr.encode() + name)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for lineno, line in enumerate(src, 1):
        f = line.split("#", 1)[0].split()
        if not f:
            continue
        try:
            kind = f[0]
            if kind == "dir":
                entry(f[1], stat.S_IFDIR | int(f[2], 8), int(f[3]), int(f[4]), 2)
            elif kind == "file":
                with open(f[2], "rb") as fh:
                    data = fh.read()
                entry(f[1], stat.S_IFREG | int(f[3], 8), int(f[4]), int(f[5]), 1, data)
            elif kind == "slink":
                entry(f[1], stat.S_IFLNK | int(f[3], 8), int(f[4]), int(f[5]), 1,
                      f[2].encode())
            elif kind == "nod":
                t = {"c": stat.S_IFCHR, "b": stat.S_IFBLK}[f[5]]
                entry(f[1], t | int(f[2], 8), int(f[3]), int(f[4]), 1,
                      rdev=(int(f[6]), int(f[7])))
            else:
                raise ValueError("unknown entry type " + kind)
        except (IndexError, ValueError, KeyError, OSError) as e:
            sys.exit("gen-cpio: %s:%d: %s: %s" % (sys.argv[1], lineno, line.strip(), e))

    entry("TRAILER!!!", 0, 0, 0, 1)
    out.extend(b"\0" * (-len(out) % 512))  # conventional block padding
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(out)
    os.replace(tmp, sys.argv[2])


if __name__ == "__main__":
    main()
