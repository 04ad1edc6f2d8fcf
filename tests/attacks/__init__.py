"""Real attack procedures in podman against the eBPF sensor and the whole pack (a package, so
that its package-scoped node and ordinary workload end with the directory)."""
