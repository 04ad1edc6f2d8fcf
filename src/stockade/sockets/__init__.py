"""The sockets of a network namespace: :mod:`~stockade.sockets.procnet` (``/proc/<pid>/net``
tables), :mod:`~stockade.sockets.diag` (netlink sock_diag, cheaper) and
:mod:`~stockade.sockets.netns` (entering a namespace from one thread). One place for the sensor's
fallback backends, the inventory's ports, the exposure of a workload, evidence and the certificate
handshakes."""
