"""A cache of loaded and compiled rules, so that a command that starts often (`stockade replay`) does
not parse and compile the same rule files every time (~0.2 s for Falco's stable rules, ~0.4 s with
Stockade's pack, against ~0.03 s to read the cache), nor a node agent that restarts (`stockade up`
and `stockade agent` keep theirs in the data directory, :func:`node_cache_dir`).

An entry is the loaded :class:`Ruleset` plus the compiled code of every source
(:meth:`Engine.compiled_states`), pickled, in ``$XDG_CACHE_HOME/stockade/rules/`` (default
``~/.cache/stockade/rules/``; ``DATA_DIR/cache/rules`` for the node's processes). Its name is a hash of everything the result depends on:

* the rule files' paths and **contents** (a changed file is a new key: a stale entry is never used);
* the engine options (rule matching, priority floor, disabled rules and tags, append_output);
* Stockade's own code: its version and the size and modification time of each of its modules (an
  edited checkout is a new key), and the Python version and the cache format.

Entries are written atomically (temporary file, then rename). Directories are created 0700 and
an entry is read only if it and its directory belong to the current user and nobody else may
write them (a pickle runs code when it is read). Anything wrong with an entry (unreadable,
corrupt, foreign) means a normal load; the cache never changes what the engine does. At most
:data:`MAX_ENTRIES` entries are kept (the least recently written go).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import stockade
from stockade.config import StockadeConfig
from stockade.engine.append_output import AppendOutput
from stockade.engine.engine import Engine
from stockade.rules.loader import load_rules
from stockade.storage.files import make_private_dirs

__all__ = ["CACHE_FORMAT", "MAX_ENTRIES", "default_cache_dir", "load_engine", "node_cache_dir"]

#: bump when what an entry holds changes shape
CACHE_FORMAT = 1
MAX_ENTRIES = 16
_PACKAGE_DIR = Path(stockade.__file__).resolve().parent


def default_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/stockade/rules``, else ``~/.cache/stockade/rules``; None without a home."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base and os.path.isabs(base):
        return Path(base) / "stockade" / "rules"
    home = os.environ.get("HOME")
    if not home or not os.path.isabs(home):
        return None
    return Path(home) / ".cache" / "stockade" / "rules"


def node_cache_dir(cfg: StockadeConfig) -> Path | None:
    """The cache of `stockade up` and `stockade agent`: ``engine.rules_cache_dir``, by default
    ``DATA_DIR/cache/rules`` (private to the service's user, as the data directory is); None when
    the configuration turns it off (``""``)."""
    d = cfg.engine.rules_cache_dir
    if d is None:
        return Path(cfg.data_dir) / "cache" / "rules"
    return Path(d) if d else None


_code_fingerprint: str | None = None


def code_fingerprint() -> str:
    """Stockade's version and, per module of the package, its path, size and modification time."""
    global _code_fingerprint
    if _code_fingerprint is None:
        h = hashlib.sha256(f"{stockade.__version__}\0{sys.version}\0{CACHE_FORMAT}".encode())
        for root, dirs, files in os.walk(_PACKAGE_DIR):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(root, name))
                    h.update(f"{os.path.join(root, name)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        _code_fingerprint = h.hexdigest()
    return _code_fingerprint


def cache_key(paths: Sequence[str], options: dict[str, Any]) -> str:
    """The entry name for these rule files (their contents are read) and engine options."""
    h = hashlib.sha256(code_fingerprint().encode())
    h.update(repr(_canonical(options)).encode())
    for p in paths:
        data = Path(p).read_bytes()
        h.update(f"\0{p}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:40]


def _canonical(v: Any) -> Any:
    """`v` with sets sorted and dataclasses as tuples: a repr that is the same in every process
    (a frozenset's order depends on the string hash seed)."""
    if isinstance(v, dict):
        return sorted((str(k), _canonical(x)) for k, x in v.items())
    if isinstance(v, set | frozenset):
        return sorted(_canonical(x) for x in v)
    if isinstance(v, list | tuple):
        return [_canonical(x) for x in v]
    if isinstance(v, AppendOutput):
        return ["AppendOutput", *(_canonical(getattr(v, f.name)) for f in fields(v))]
    if v is None or isinstance(v, str | int | float | bool):
        return v
    raise TypeError(f"no canonical form for {type(v).__name__}")


def load_engine(
    paths: Sequence[str],
    *,
    cache_dir: Path | None,
    rule_matching: str = "first",
    hostname: str | None = None,
    min_priority: str | None = None,
    disabled_rules: Iterable[str] = (),
    disabled_tags: Iterable[str] = (),
    append_output: Sequence[AppendOutput] = (),
    check: Callable[[Engine], None] | None = None,
) -> Engine:
    """:meth:`Engine.from_files`, through the cache in `cache_dir` (None: no cache). Errors in
    the rules are raised exactly as without the cache (a ruleset with errors is never cached);
    `check` (which raises to refuse the engine: a configuration naming a rule it does not have) runs
    on every engine, before a new entry is written, so a refused start writes nothing."""
    options: dict[str, Any] = {
        "rule_matching": rule_matching,
        "min_priority": min_priority,
        "disabled_rules": list(disabled_rules),
        "disabled_tags": list(disabled_tags),
        "append_output": list(append_output),
    }
    entry: Path | None = None
    if cache_dir is not None:
        try:
            entry = cache_dir / f"{cache_key(paths, options)}.pickle"
        except OSError:  # a rule file cannot be read: the loader says so, with its location
            entry = None
    kwargs: dict[str, Any] = {**options, "hostname": hostname}
    if entry is not None:
        blob = _read_entry(entry)
        if blob is not None:
            try:
                ruleset, compiled = pickle.loads(blob)
                cached = Engine(ruleset, compiled=compiled, **kwargs)
            except Exception:  # corrupt or from another build: load normally and overwrite it
                cached = None
            if cached is not None:
                if check is not None:
                    check(cached)
                return cached
    ruleset = load_rules(list(paths))
    engine = Engine(ruleset, **kwargs)
    if check is not None:
        check(engine)
    if entry is not None:
        try:
            blob = pickle.dumps((ruleset, engine.compiled_states()), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # something in the rules that does not pickle: no cache for them
            return engine
        _write_entry(entry, blob)
    return engine


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read_entry(entry: Path) -> bytes | None:
    try:
        if not _private(os.stat(entry.parent)):
            return None
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _private(st):
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read()
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def _write_entry(entry: Path, blob: bytes) -> None:
    """Best effort: a cache that cannot be written only means the next run compiles again."""
    d = entry.parent
    try:
        make_private_dirs(d)
        if not _private(os.stat(d)):
            return
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(d)
    except OSError:
        return


def _prune(d: Path) -> None:
    entries = sorted(d.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        old.unlink(missing_ok=True)
