#!/usr/bin/env bash
# Install everything Stockade needs on a Debian machine: system packages, a virtualenv with the
# Python dependencies, and Stockade itself (editable). Idempotent: installs only what is missing.
# --venv: only the virtualenv (no root, no system packages): what `make lint` and `make check` need.
set -euo pipefail
cd "$(dirname "$0")/.."
venv_only=false
if [[ ${1:-} == --venv ]]; then
  venv_only=true
fi

DEBS=(postgresql sysdig clang llvm libc6-dev libbpf-dev bpftool runc podman busybox-static iproute2 conntrack nftables debootstrap rpm db-util gnupg)

# the language package fixtures: Go binaries, Debian's log4j jars and the JDK's jar tool, objcopy
DEBS+=(golang-go liblog4j2-java binutils openjdk-17-jdk-headless)

# the inventory's graph rendered in tests (dot -Tsvg)
DEBS+=(graphviz)

missing=()
$venv_only || for p in "${DEBS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# npm (the node_modules fixtures): Debian's, unless a nodejs that ships its own npm is installed
$venv_only || command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install: need root to install Debian packages: ${missing[*]}" >&2
    exit 1
  fi
  echo "install: Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The eBPF sensor (CO-RE, built against this kernel's BTF); without it the fallback sensors run.
$venv_only || scripts/build-bpf.sh || echo "install: eBPF sensor not built (the fallback sensors will be used)" >&2

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.stockade-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
# The sensor's native hot path (C through CPython's API, for this interpreter); without it the
# pure-Python decoder runs (the same events, slower).
PYTHON=.venv/bin/python scripts/build-native.sh || echo "install: native hot path not built (the pure-Python decoder will be used)" >&2

# Falco's rules files (Apache-2.0) where Falco's packages put them, so `stockade up` loads them by
# default, as the engine's defaults expect. Only when absent, and only from this machine's data.
FALCO_RULES_SRC=${FALCO_RULES_SRC:-../shared/data/falco-rules}
if ! $venv_only && [[ -d $FALCO_RULES_SRC && $(id -u) -eq 0 ]]; then
  mkdir -p /etc/falco
  for f in falco_rules.yaml k8s_audit_rules.yaml; do
    if [[ -f $FALCO_RULES_SRC/$f && ! -e /etc/falco/$f ]]; then
      install -m 0644 "$FALCO_RULES_SRC/$f" "/etc/falco/$f"
      echo "install: Falco rules: /etc/falco/$f"
    fi
  done
fi
