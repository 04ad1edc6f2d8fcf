#!/usr/bin/env bash
# The whole suite (`make unit`, what CI runs) as two pytest processes side by side:
# - the tests that use the node itself (markers root, ebpf, containers: sensors, podman and runc,
#   namespaces, nftables, cgroups), one after the other in this process, as a serial run would
#   (never two sensors or two container batches at once), their output on the terminal;
# - all the others beside them, their output kept and printed after.
# The node's tests thus always run with the other core busy, as users' nodes are. Extra arguments
# go to both pytest runs. The exit status is the first failing run's (0 if both passed).
set -uo pipefail
cd "$(dirname "$0")/.."
node="root or ebpf or containers"
base="${TMPDIR:-/tmp}/stockade-suite-$$"
mkdir -p "$base"
other_log="$base/other.log"
trap 'rm -rf "$base"' EXIT
# each run its own base temporary directory: neither cleans up the other's
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 --basetemp "$base/other" \
  -m "not ($node)" "$@" >"$other_log" 2>&1 </dev/null &
other=$!
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 --basetemp "$base/node" \
  -m "$node" "$@" </dev/null
node_rc=$?
wait "$other"
other_rc=$?
echo
echo "==== the tests beside the node's (-m \"not ($node)\") ===="
cat "$other_log"
echo "node tests: exit $node_rc; the others: exit $other_rc"
if [ "$node_rc" -ne 0 ]; then exit "$node_rc"; fi
exit "$other_rc"
