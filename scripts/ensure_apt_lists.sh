#!/usr/bin/env bash
# Make sure apt's Packages lists exist: notebook 06 (text hashing) reads the package descriptions in them.
# Runs `apt-get update` only when no *_Packages* file is there and only as root; otherwise explains what to do.
set -euo pipefail
dir="${1:-/var/lib/apt/lists}"

have_lists() { compgen -G "$dir/*_Packages*" >/dev/null; }

have_lists && exit 0
if [ "$dir" = /var/lib/apt/lists ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "no Packages lists in $dir: running apt-get update ..."
  apt-get update -qq
  have_lists && exit 0
fi
cat >&2 <<MSG
apt's package lists are missing: $dir holds no *_Packages file (notebook 06 reads the package descriptions).
Get them in one of these ways, then run the command again:
  - Debian/Ubuntu:  sudo apt-get update
  - any machine:    copy a Debian Packages file (e.g. dists/bookworm/main/binary-amd64/Packages.xz of a mirror)
                    and set packages_path in params/<set>/06_text_hashing.yaml to it
MSG
exit 1
