#!/usr/bin/env bash
# Make sure the Fashion-MNIST IDX files exist and are whole (the embedded default dataset, used offline).
# Installs Debian's package `dataset-fashion-mnist` when run as root; otherwise explains how to get them.
# The folder comes from the first argument (the Makefile passes FASHION_MNIST_DIR, which it also exports
# to the notebooks), so one setting reaches both.
set -euo pipefail
dir="${1:-/usr/share/datasets/fashion-mnist}"
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

have_all() { for f in "${files[@]}"; do [ -s "$dir/$f" ] || return 1; done; }

# every file present but damaged (truncated, bad CRC, an HTML page saved as .gz), all named at once
damaged() { for f in "${files[@]}"; do [ ! -s "$dir/$f" ] || gzip -t "$dir/$f" 2>/dev/null || echo "$dir/$f"; done; }

bad="$(damaged)"
if [ -n "$bad" ]; then
  cat >&2 <<MSG
Fashion-MNIST files in $dir are damaged (not readable gzip: truncated, corrupt, or an HTML page saved as .gz):
$(sed 's/^/  /' <<<"$bad")
Delete them and get them again (sudo apt-get install --reinstall dataset-fashion-mnist, or download the .gz
files of github.com/zalandoresearch/fashion-mnist, data/fashion), then run the command again.
MSG
  exit 1
fi
have_all && exit 0
if [ "$dir" = /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Fashion-MNIST not found in $dir: installing Debian package dataset-fashion-mnist ..."
  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; }
  have_all && exit 0
fi
cat >&2 <<MSG
Fashion-MNIST is missing: $dir must hold ${files[*]}.
Get it in one of these ways, then run the command again:
  - Debian/Ubuntu:  sudo apt-get install dataset-fashion-mnist   (installs /usr/share/datasets/fashion-mnist)
  - any machine:    download the four .gz files of github.com/zalandoresearch/fashion-mnist (data/fashion)
                    into a folder and pass it: make <target> FASHION_MNIST_DIR=/that/folder
MSG
exit 1
