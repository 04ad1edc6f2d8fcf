"""Stockade: zero-trust runtime security for Linux containers and Kubernetes."""

__version__ = "0.1.0"
