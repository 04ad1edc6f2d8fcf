#!/usr/bin/env bash
# Build the eBPF sensor (CO-RE): vmlinux.h from this kernel's BTF, then probe.bpf.c -> probe.bpf.o;
# and the enforcers' programs: src/stockade/enforce/bpf/*.bpf.c -> src/stockade/enforce/bpf/build/.
# Idempotent and fast when up to date. Output: src/stockade/sensor/ebpf/build/probe.bpf.o
# (gitignored), which stockade.sensor.ebpf finds. Needs clang, bpftool and libbpf-dev.
# Usage: scripts/build-bpf.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=src/stockade/sensor/ebpf/probe.bpf.c
OUT_DIR=${STOCKADE_BPF_BUILD_DIR:-src/stockade/sensor/ebpf/build}
OBJ=$OUT_DIR/probe.bpf.o
VMLINUX_BTF=${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}
CLANG=${CLANG:-clang}
BPFTOOL=${BPFTOOL:-bpftool}
force=0
[[ ${1:-} == --force ]] && force=1

for tool in "$CLANG" "$BPFTOOL"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$tool ]]; then
    echo "build-bpf: $tool not found (apt-get install clang llvm libbpf-dev bpftool)" >&2
    exit 1
  fi
done
command -v "$BPFTOOL" >/dev/null 2>&1 || BPFTOOL=/usr/sbin/$BPFTOOL
if [[ ! -r $VMLINUX_BTF ]]; then
  echo "build-bpf: $VMLINUX_BTF not readable: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)" >&2
  exit 1
fi
if [[ ! -f /usr/include/bpf/bpf_helpers.h ]]; then
  echo "build-bpf: /usr/include/bpf/bpf_helpers.h missing (apt-get install libbpf-dev)" >&2
  exit 1
fi

case "$(uname -m)" in
  x86_64) ARCH=x86 ;;
  aarch64) ARCH=arm64 ;;
  *) echo "build-bpf: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac

mkdir -p "$OUT_DIR"
# vmlinux.h: regenerate when the kernel changed (keyed by its release and BTF size)
key="$(uname -r) $(stat -c %s "$VMLINUX_BTF")"
if ((force)) || [[ ! -s $OUT_DIR/vmlinux.h || ! -f $OUT_DIR/vmlinux.key || $(cat "$OUT_DIR/vmlinux.key") != "$key" ]]; then
  "$BPFTOOL" btf dump file "$VMLINUX_BTF" format c >"$OUT_DIR/vmlinux.h.tmp"
  mv "$OUT_DIR/vmlinux.h.tmp" "$OUT_DIR/vmlinux.h"
  echo "$key" >"$OUT_DIR/vmlinux.key"
  force=1
fi
# build SRC into OBJ (against $OUT_DIR/vmlinux.h) when it or a header given after them is newer
build() {
  local src=$1 obj=$2 dep stale=$force
  shift 2
  for dep in "$src" "$0" "$@"; do
    [[ -f $obj && ! $dep -nt $obj ]] || stale=1
  done
  if ((stale)); then
    "$CLANG" -O2 -g -Wall -Werror -Wno-unused-function -target bpf -D__TARGET_ARCH_$ARCH \
      -I"$OUT_DIR" -I/usr/include/"$(uname -m)"-linux-gnu -c "$src" -o "$obj.tmp"
    mv "$obj.tmp" "$obj"
    echo "build-bpf: built $obj"
  else
    echo "build-bpf: $obj is up to date"
  fi
}
build "$SRC" "$OBJ"
# the enforcers' programs (src/stockade/enforce/bpf/*.bpf.c -> its build/*.bpf.o)
ENFORCE_DIR=src/stockade/enforce/bpf
ENFORCE_OUT=${STOCKADE_ENFORCE_BPF_BUILD_DIR:-$ENFORCE_DIR/build}
mkdir -p "$ENFORCE_OUT"
for src in "$ENFORCE_DIR"/*.bpf.c; do
  if [[ -e $src ]]; then
    build "$src" "$ENFORCE_OUT/$(basename "${src%.c}").o" "$ENFORCE_DIR"/*.h
  fi
done
