#!/usr/bin/env bash
# Commit subjects stay short: under 72 characters, details in the body (docs/contributing in
# docs/architecture.md). Checks every commit since the convention began; in a shallow clone or a
# tree without git it checks what it can and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
SINCE=4b7d89b  # the last commit before the convention
if ! git rev-parse --verify -q "$SINCE^{commit}" >/dev/null 2>&1; then
  echo "check-commits: $SINCE is not in this clone; skipped" >&2
  exit 0
fi
bad=$(git log --format='%h %s' "$SINCE..HEAD" | awk '{ s = substr($0, index($0, " ") + 1); if (length(s) >= 72) print }')
if [ -n "$bad" ]; then
  echo "check-commits: commit subjects of 72 characters or more (put details in the body):" >&2
  echo "$bad" >&2
  exit 1
fi
