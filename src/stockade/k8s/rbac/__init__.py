"""Kubernetes RBAC: an authorizer that decides as the API server's does, least-privilege roles
derived from audit logs, and the analysis of RBAC objects (granted, unused and risky grants).

- :mod:`~stockade.k8s.rbac.model`: rules, subjects, roles, bindings, requests and users;
- :mod:`~stockade.k8s.rbac.authorizer`: :class:`~stockade.k8s.rbac.authorizer.Authorizer`, the one
  place RBAC decisions are made (rule matching, binding resolution, ClusterRole aggregation);
- :mod:`~stockade.k8s.rbac.load`: RBAC objects from YAML/JSON files;
- :mod:`~stockade.k8s.rbac.requests`: audit events as the requests the authorizer decides on;
- :mod:`~stockade.k8s.rbac.generate`: the minimal roles and bindings covering a subject's requests;
- :mod:`~stockade.k8s.rbac.risky`: the risky grants, shared by the catalogue checks and `analyze`;
- :mod:`~stockade.k8s.rbac.analyze`: per subject, granted, unused and risky permissions.
"""
