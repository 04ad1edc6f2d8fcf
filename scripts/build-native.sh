#!/usr/bin/env bash
# Build the sensor's optional native hot path (C through CPython's API), each source into a module
# beside it (<name><EXT_SUFFIX>, gitignored): the eBPF ring-buffer walk and syscall decoding
# (sensor/ebpf/_fastdecode.c) and enrichment's merge (sensor/_merge.c). Without them the pure-Python
# code runs (the same events, slower). Idempotent and fast when up to date. Needs gcc and the
# interpreter's headers.
# Usage: scripts/build-native.sh [--force]   (PYTHON: the interpreter to build for; default .venv's)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || PY=python3
CC=${CC:-gcc}
SOURCES=(src/stockade/sensor/ebpf/_fastdecode.c src/stockade/sensor/_merge.c)
force=0
[[ ${1:-} == --force ]] && force=1

if ! command -v "$CC" >/dev/null 2>&1; then
  echo "build-native: $CC not found (apt-get install gcc)" >&2
  exit 1
fi
read -r INC SUFFIX < <("$PY" -c 'import sysconfig as s; print(s.get_paths()["include"], s.get_config_var("EXT_SUFFIX"))')
if [[ ! -f $INC/Python.h ]]; then
  echo "build-native: $INC/Python.h missing (the interpreter's development headers)" >&2
  exit 1
fi
for SRC in "${SOURCES[@]}"; do
  OUT=${SRC%.c}$SUFFIX
  if ((force)) || [[ ! -f $OUT || $SRC -nt $OUT || $0 -nt $OUT ]]; then
    "$CC" -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
      -fPIC -shared -fvisibility=hidden -I"$INC" "$SRC" -o "$OUT.tmp"
    mv "$OUT.tmp" "$OUT"
    echo "build-native: built $OUT"
  else
    echo "build-native: $OUT is up to date"
  fi
done
