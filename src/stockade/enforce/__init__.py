"""Enforcement: the kernel mechanisms that deny what a workload's policy does not allow."""
