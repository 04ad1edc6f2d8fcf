"""Packages in root filesystems: one walk of a tree, every cataloger fed the files it wants.

:func:`stockade.packages.walk.catalog_tree` is the entry point; catalogers live one per module
(:mod:`stockade.packages.registry` lists them) and follow
:class:`stockade.packages.cataloger.Cataloger`.
"""
