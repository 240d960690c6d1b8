#!/usr/bin/env bash
# build-guest.sh — builds the default guest's assets in build/guest/ (see guest/README.md):
#   vmlinuz          Debian's cloud kernel for amd64 (bzImage)
#   kernel-version   its release string (uname -r)
#   initrd.cpio.gz   gzip'ed cpio "newc" initramfs: /init, busybox, the virtio modules,
#                    the guest programs from guest/programs/
#   initrd.cpio      the same archive uncompressed
#   versions         the Debian packages the assets came from
#
# Idempotent and incremental: downloaded .debs are kept in build/guest/cache/ and every
# step is skipped when its output is newer than its inputs. The kernel package is
# resolved from the archive (linux-image-cloud-amd64 -> linux-image-<ver>-cloud-amd64) on
# each run; `make guest` only runs this script when one of its inputs changed, so the
# kernel stays pinned until then (run this script directly to pick up a newer one).
#
# Environment: GUEST_DIR (default build/guest), GUEST_CC (default gcc),
#              GUEST_KERNEL_PKG (default linux-image-cloud-amd64; a versioned
#              linux-image-* package name pins the kernel), SOURCE_DATE_EPOCH (cpio mtimes).
# Needs: apt-get/apt-cache, dpkg-deb, gcc with static glibc (libc6-dev), python3, gzip.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${GUEST_DIR:-build/guest}
CACHE=$OUT/cache
CC=${GUEST_CC:-gcc}
KERNEL_PKG=${GUEST_KERNEL_PKG:-linux-image-cloud-amd64}
# The drivers the guest loads at boot; their dependencies come from modules.dep.
MODULES=(virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev
         virtio_blk virtio_net virtio_console virtio_balloon)

log() { echo "build-guest: $*" >&2; }
die() { log "error: $*"; exit 1; }
# newer OUT IN...: true when OUT exists and is newer than every IN
newer() {
    local out=$1 f; shift
    [ -e "$out" ] || return 1
    for f in "$@"; do [ "$f" -nt "$out" ] && return 1; done
    return 0
}

mkdir -p "$CACHE"
# put FILE: writes stdin to FILE only if the content differs, so that generated files
# keep their mtime (and the "newer than inputs" tests stay meaningful).
put() {
    cat >"$1.tmp"
    if cmp -s "$1.tmp" "$1"; then rm "$1.tmp"; else mv "$1.tmp" "$1"; fi
}
APT_OPTS=()
# apt drops to user _apt to download; it cannot write into our cache dir, so stay root
# (avoids a warning per download).
[ "$(id -u)" -eq 0 ] && APT_OPTS=(-o APT::Sandbox::User=root)
apt_updated=0
apt_update() {  # once per run, and only where it can work
    [ $apt_updated -eq 0 ] && [ "$(id -u)" -eq 0 ] || return 1
    log "apt-get update"
    apt_updated=1
    apt-get update -qq >/dev/null 2>&1 || log "warning: apt-get update failed"
}

# fetch_debs PKG...: sets DEB[PKG] to the path of PKG's .deb in the cache, downloading
# those whose archive version the cache lacks (one apt call for all: each costs ~1 s).
# Offline, falls back to the newest cached .deb of the package.
declare -A DEB=()
fetch_debs() {
    local pkg name cached uris
    uris=$(apt-get download --print-uris "$@" 2>/dev/null) || uris=""
    if [ -z "$uris" ] && apt_update; then
        uris=$(apt-get download --print-uris "$@" 2>/dev/null) || uris=""
    fi
    for pkg in "$@"; do
        # lines: 'URI' FILENAME SIZE HASH; FILENAME is PKG_VERSION_ARCH.deb
        name=$(awk -v p="${pkg}_" 'index($2, p) == 1 {print $2; exit}' <<<"$uris")
        if [ -n "$name" ]; then
            if [ ! -s "$CACHE/$name" ]; then
                log "downloading $pkg"
                (cd "$CACHE" && apt-get "${APT_OPTS[@]}" download -qq "$pkg" >/dev/null) ||
                    die "apt-get download $pkg failed"
                [ -s "$CACHE/$name" ] || die "apt-get download $pkg did not produce $name"
                # Keep only the current version of each package in the cache.
                find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" ! -name "$name" -delete
            fi
            DEB[$pkg]=$CACHE/$name
            continue
        fi
        cached=$(ls -t "$CACHE/${pkg}"_*.deb 2>/dev/null | head -n 1) || true
        [ -n "$cached" ] || die "cannot resolve package $pkg (no apt lists? run apt-get update)"
        log "warning: $pkg not found in the apt lists, using cached $(basename "$cached")"
        DEB[$pkg]=$cached
    done
}

# resolve_kernel: sets kpkg to the versioned image package behind the
# linux-image-cloud-amd64 metapackage (the metapackage itself contains nothing).
resolve_kernel() {
    local pkg
    case $KERNEL_PKG in
        linux-image-[0-9]*) kpkg=$KERNEL_PKG; return ;;
    esac
    pkg=$(apt-cache depends "$KERNEL_PKG" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}') || true
    if [ -z "$pkg" ] && apt_update; then
        pkg=$(apt-cache depends "$KERNEL_PKG" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}') || true
    fi
    if [ -z "$pkg" ]; then  # offline: the newest kernel already in the cache
        pkg=$(ls -t "$CACHE"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | head -n 1) || true
        [ -n "$pkg" ] || die "cannot resolve $KERNEL_PKG (no apt lists? run apt-get update)"
        pkg=$(basename "$pkg"); pkg=${pkg%%_*}
        log "warning: $KERNEL_PKG not resolvable, using cached $pkg"
    fi
    kpkg=$pkg
}

# unpack DEB DIR: dpkg-deb -x into DIR unless DIR already holds that .deb's contents.
unpack() {
    local deb=$1 dir=$2
    if [ -f "$dir/.from" ] && [ "$(cat "$dir/.from")" = "$(basename "$deb")" ]; then
        return
    fi
    log "unpacking $(basename "$deb")"
    rm -rf "$dir" "$dir.tmp"
    dpkg-deb -x "$deb" "$dir.tmp"
    basename "$deb" >"$dir.tmp/.from"
    mv "$dir.tmp" "$dir"
}

# --- 1. packages -------------------------------------------------------------------------
resolve_kernel
fetch_debs "$kpkg" busybox-static
kdeb=${DEB[$kpkg]}
bdeb=${DEB[busybox-static]}
unpack "$kdeb" "$OUT/kernel-root"
unpack "$bdeb" "$OUT/busybox-root"
BUSYBOX=$OUT/busybox-root/bin/busybox
[ -x "$BUSYBOX" ] || die "no bin/busybox in $(basename "$bdeb")"

shopt -s nullglob
kimgs=("$OUT"/kernel-root/boot/vmlinuz-*)
[ ${#kimgs[@]} -eq 1 ] || die "expected one boot/vmlinuz-* in $(basename "$kdeb")"
kver=${kimgs[0]##*/vmlinuz-}
MODROOT=$OUT/kernel-root/lib/modules/$kver
[ -d "$MODROOT" ] || die "no lib/modules/$kver in $(basename "$kdeb")"

if ! newer "$OUT/vmlinuz" "${kimgs[0]}"; then
    cp "${kimgs[0]}" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
fi
echo "$kver" | put "$OUT/kernel-version"
printf '%s\n' "$(basename "$kdeb" .deb)" "$(basename "$bdeb" .deb)" | put "$OUT/versions"

# --- 2. module dependencies --------------------------------------------------------------
# Debian's package does not ship modules.dep (its postinst runs depmod on the installed
# system), so generate it when missing: busybox's depmod reads each module's
# "depends=" modinfo field, which modpost derived from the symbols the module uses.
if [ ! -s "$MODROOT/modules.dep" ]; then
    log "generating modules.dep"
    "$BUSYBOX" depmod -b "$OUT/kernel-root" "$kver"
    [ -s "$MODROOT/modules.dep" ] || die "depmod produced no modules.dep"
fi

declare -A DEPS=() PATH_OF=() SEEN=()
while IFS= read -r line; do
    mod=${line%%:*}
    DEPS[$mod]=${line#*:}
    name=${mod##*/}; name=${name%%.ko*}; name=${name//-/_}
    PATH_OF[$name]=$mod
done <"$MODROOT/modules.dep"

LOAD_ORDER=()
# visit MODPATH: appends MODPATH after everything it depends on (depth-first; modules.dep
# lists the transitive dependencies, not in load order).
visit() {
    local m=$1 d
    [ -n "${SEEN[$m]-}" ] && return
    SEEN[$m]=1
    for d in ${DEPS[$m]-}; do visit "$d"; done
    LOAD_ORDER+=("$m")
}
for name in "${MODULES[@]}"; do
    [ -n "${PATH_OF[$name]-}" ] || die "module $name is not in $kpkg"
    visit "${PATH_OF[$name]}"
done

# --- 3. guest programs -------------------------------------------------------------------
mkdir -p "$OUT/programs"
PROGRAMS=()
for src in guest/programs/*.c; do
    bin=$OUT/programs/$(basename "$src" .c)
    if ! newer "$bin" "$src" guest/programs/*.h; then
        log "compiling $src"
        "$CC" -O2 -static -pthread -Wall -Wextra -o "$bin.tmp" "$src"
        mv "$bin.tmp" "$bin"
    fi
    PROGRAMS+=("$bin")
done
# The CPU benchmark is freestanding (its own _start, two system calls) so the very
# same binary runs natively, under bench/emurun and inside the guest.
bin=$OUT/programs/cpubench
if ! newer "$bin" bench/cpubench.c; then
    log "compiling bench/cpubench.c"
    "$CC" -std=gnu11 -O2 -static -nostdlib -fno-math-errno -fno-tree-loop-distribute-patterns \
        -fno-stack-protector -fno-pie -no-pie -o "$bin.tmp" bench/cpubench.c
    mv "$bin.tmp" "$bin"
fi
PROGRAMS+=("$bin")

# --- 4. initramfs ------------------------------------------------------------------------
GEN=$OUT/gen
mkdir -p "$GEN"
# The modules /init loads, in dependency order, and a modules.dep for just them (so
# busybox modprobe works in the guest too).
printf '%s\n' "${LOAD_ORDER[@]}" | put "$GEN/unum-modules.load"
for m in "${LOAD_ORDER[@]}"; do echo "$m:${DEPS[$m]}"; done | put "$GEN/modules.dep"
printf 'root:x:0:0:root:/root:/bin/sh\n' | put "$GEN/passwd"
printf 'root:x:0:\n' | put "$GEN/group"

{
    echo "# generated by scripts/build-guest.sh"
    for d in /bin /sbin /usr /usr/bin /usr/sbin /usr/local /usr/local/bin /etc /lib \
             /lib/modules /proc /sys /dev /run /mnt; do
        echo "dir $d 0755 0 0"
    done
    echo "dir /root 0700 0 0"
    echo "dir /tmp 1777 0 0"
    # The kernel opens /dev/console for /init's stdin/out/err before /init can mount
    # devtmpfs, so the node must be in the archive.
    echo "nod /dev/console 0600 0 0 c 5 1"
    echo "nod /dev/null 0666 0 0 c 1 3"
    echo "file /init guest/init 0755 0 0"
    echo "file /bin/busybox $BUSYBOX 0755 0 0"
    # One symlink per applet at busybox's standard location (so /usr/bin/env etc. exist);
    # done here rather than `busybox --install` at boot, which costs boot time.
    "$BUSYBOX" --list-full | while read -r applet; do
        case $applet in bin/busybox | linuxrc | */ ) continue ;; esac
        echo "slink /$applet /bin/busybox 0777 0 0"
    done
    echo "file /etc/passwd $GEN/passwd 0644 0 0"
    echo "file /etc/group $GEN/group 0644 0 0"
    echo "dir /lib/modules/$kver 0755 0 0"
    for m in "${LOAD_ORDER[@]}"; do dirname "$m"; done | sort -u | while read -r d; do
        p=""
        IFS=/ read -ra parts <<<"$d"
        for part in "${parts[@]}"; do p=$p/$part; echo "dir /lib/modules/$kver$p 0755 0 0"; done
    done | awk '!seen[$0]++'
    for m in "${LOAD_ORDER[@]}"; do echo "file /lib/modules/$kver/$m $MODROOT/$m 0644 0 0"; done
    echo "file /lib/modules/$kver/modules.dep $GEN/modules.dep 0644 0 0"
    echo "file /lib/modules/$kver/unum-modules.load $GEN/unum-modules.load 0644 0 0"
    for bin in "${PROGRAMS[@]}"; do
        echo "file /usr/local/bin/${bin##*/} $bin 0755 0 0"
    done
} | put "$GEN/initrd.list"

# Inputs of the archive: the listing plus every file it names.
mapfile -t inputs < <(awk '$1 == "file" {print $3}' "$GEN/initrd.list")
if ! newer "$OUT/initrd.cpio" "$GEN/initrd.list" scripts/gen-cpio.py "${inputs[@]}"; then
    log "writing initrd.cpio"
    python3 scripts/gen-cpio.py "$GEN/initrd.list" "$OUT/initrd.cpio"
fi
if ! newer "$OUT/initrd.cpio.gz" "$OUT/initrd.cpio"; then
    gzip -9 -n -c "$OUT/initrd.cpio" >"$OUT/initrd.cpio.gz.tmp"
    mv "$OUT/initrd.cpio.gz.tmp" "$OUT/initrd.cpio.gz"
fi

# make compares the outputs with this script's inputs: mark them up to date even when
# nothing had to change.
touch "$OUT/vmlinuz" "$OUT/kernel-version" "$OUT/initrd.cpio" "$OUT/initrd.cpio.gz"
log "$kver: $(du -h "$OUT/vmlinuz" | cut -f1) vmlinuz, $(du -h "$OUT/initrd.cpio.gz" | cut -f1) initrd.cpio.gz, ${#LOAD_ORDER[@]} modules"
