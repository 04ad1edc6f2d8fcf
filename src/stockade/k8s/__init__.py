"""Kubernetes posture: one catalogue of checks over Kubernetes objects (Pod Security Standards,
NSA/CISA, CIS 5.x), used by the manifest and cluster scanner, the admission webhook, the RBAC
analysis and the node checks.

- :mod:`stockade.k8s.objects`: a Kubernetes object with where it came from (file, line of each
  field) and the pod template inside every workload kind;
- :mod:`stockade.k8s.catalogue`: the :class:`~stockade.k8s.catalogue.Check` registry and
  :func:`~stockade.k8s.catalogue.evaluate`;
- :mod:`stockade.k8s.finding`: a failed check on one object (the ``--output json`` contract);
- :mod:`stockade.k8s.checks`: the checks themselves, one module per family.
"""
