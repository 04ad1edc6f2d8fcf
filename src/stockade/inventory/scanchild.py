"""The child process of a walk (:func:`stockade.inventory.assets.catalog_child`): catalogs the root
given as its first argument (the others: directories not entered) and prints it as JSON."""

from __future__ import annotations

import sys

from stockade.inventory.assets import catalog_json
from stockade.packages.walk import catalog_tree


def main(argv: list[str]) -> int:
    """Catalog argv[0] (argv[1:] skipped) to standard output."""
    if not argv:
        print("usage: scanchild ROOT [SKIP...]", file=sys.stderr)
        return 2
    try:
        cat = catalog_tree(argv[0], skip=argv[1:])
    except Exception as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(catalog_json(cat))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
