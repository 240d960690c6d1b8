#!/usr/bin/env bash
# Installs unum's build and test dependencies from Debian's archive when missing.
set -euo pipefail
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in build-essential libcmocka-dev binutils zlib1g-dev acpica-tools cpio libucx-dev libsodium-dev libssl-dev; do
    have_pkg "$p" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "unum: missing packages: ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
    exit 1
fi
echo "unum: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
