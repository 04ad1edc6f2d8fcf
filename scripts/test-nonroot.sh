#!/usr/bin/env bash
# The test suite as an ordinary user: the developer loop that needs no root. Tests marked root,
# ebpf or containers are skipped with their reason (CI is unset here: in CI they must run).
#
# As an ordinary user: runs pytest in this checkout with its .venv (scripts/install.sh makes it).
# As root: checks that the suite really passes without privileges. It makes a user (stockade-test,
# or $STOCKADE_TEST_USER) if absent, copies this checkout (committed and uncommitted files, not
# .venv) to a directory that user owns ($STOCKADE_TEST_CLONE, default /tmp/stockade-nonroot),
# builds a venv there as that user (scripts/install.sh --venv), and runs pytest there as that user.
#
# Usage: scripts/test-nonroot.sh [pytest arguments...]     (default: the whole suite, quiet)
set -euo pipefail
cd "$(dirname "$0")/.."

args=("$@")
((${#args[@]})) || args=(-q)

if [[ $(id -u) -ne 0 ]]; then
  exec env -u CI .venv/bin/python -m pytest -p no:cacheprovider "${args[@]}"
fi

user=${STOCKADE_TEST_USER:-stockade-test}
clone=${STOCKADE_TEST_CLONE:-/tmp/stockade-nonroot}
id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"

mkdir -p "$clone"
# the working tree as it is (tracked and new files, .gitignore respected) in place of the last
# copy; its venv stays (install.sh refreshes it when pyproject.toml changed)
find "$clone" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
git ls-files -z --cached --others --exclude-standard |
  tar -c --null --files-from=- --ignore-failed-read -f - 2>/dev/null | tar -x -C "$clone" -f -
chown -R "$user": "$clone"

printf -v quoted ' %q' "${args[@]}"
exec runuser -u "$user" -- env -u CI HOME="$(getent passwd "$user" | cut -d: -f6)" bash -c "
  set -euo pipefail
  cd '$clone'
  scripts/install.sh --venv >/dev/null
  exec .venv/bin/python -m pytest -p no:cacheprovider$quoted
"
