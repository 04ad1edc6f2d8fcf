"""The eBPF sensor backend: a CO-RE program on BTF tracepoints, read through a ring buffer."""
