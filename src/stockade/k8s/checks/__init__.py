"""The checks of the catalogue, one module per family; every module here is imported by
:func:`stockade.k8s.catalogue.all_checks` (a new module needs no registration)."""
