#!/usr/bin/env bash
# Make sure the Fashion-MNIST IDX files exist (the embedded default dataset, used offline).
# Installs Debian's package `dataset-fashion-mnist` when run as root; otherwise explains how to get them.
set -euo pipefail
dir="${1:-/usr/share/datasets/fashion-mnist}"
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

have_all() { for f in "${files[@]}"; do [ -s "$dir/$f" ] || return 1; done; }

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
