"""The import graph of ``src/stockade`` has no cycle: every module can be read knowing only what it imports.

import-linter's layer and independence contracts (pyproject.toml) say which package may import which;
this test covers what contracts cannot: two modules of one package importing each other, including
imports inside functions (grimp sees those) that hide a cycle from a reader.
"""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    mods = sorted(graph.modules)
    adj = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in mods}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in mods:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            if i < len(adj[v]):
                work.append((v, i + 1))
                w = adj[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = _pop_component(stack, on_stack, v)
                if len(comp) > 1:
                    found.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return found


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    """The modules of the component `root` heads: popped off the stack down to it."""
    comp = []
    while True:
        w = stack.pop()
        on_stack.discard(w)
        comp.append(w)
        if w == root:
            return comp


def test_no_import_cycle_in_src() -> None:
    assert _cycles(grimp.build_graph("stockade")) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    g = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.a")
    g.add_import(importer="p.c", imported="p.a")
    assert _cycles(g) == [["p.a", "p.b"]]
