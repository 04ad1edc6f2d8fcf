"""A node's filesystem under a root directory (``/`` on the node; a copy or a test tree
elsewhere), read as the node items need it.

Every path is given as on the node (``/var/lib/kubelet/config.yaml``) and read under the root;
absolute symbolic links are followed inside the root. What cannot be read as its format (a broken
YAML or TOML file) is kept in :attr:`NodeFS.problems` with its file and line, and the items that
needed it say so; the run goes on.

Flags come as tokens with their origin (file and line), from a running process's
``/proc/PID/cmdline``, a systemd unit and its drop-ins (``ExecStart=`` with ``$VARS`` expanded
from ``Environment=`` and ``EnvironmentFile=``), a static pod manifest's ``command`` and ``args``,
or a file of flags. :class:`Flags` keeps the last value of each flag, as the Go flag package does.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.errors import Location, SourceError
from stockade.k8s.node.result import Evidence
from stockade.rules.yamldoc import YamlError, YMap, YSeq, load_all

__all__ = ["Flags", "NodeFS", "Token", "parse_flags", "yaml_lookup"]

#: where systemd keeps units, highest precedence first
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


@dataclass(frozen=True, slots=True)
class Token:
    """One command-line word and where it was written."""

    text: str
    file: str
    line: int | None = None


@dataclass(slots=True)
class Flags:
    """The flags of one command line: name (without dashes) -> (value, evidence); the last wins.

    A flag without a value (``--profiling``) has the value ``true``. `source` says where the
    command line came from (a process, a unit, a manifest), `args` are the words that were not
    flags."""

    source: str
    values: dict[str, tuple[str, Evidence]] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)

    def get(self, name: str) -> tuple[str, Evidence] | None:
        """The value of ``--name`` and where it was set; None when not given."""
        return self.values.get(name)


def parse_flags(tokens: Sequence[Token], source: str) -> Flags:
    """The flags of `tokens` (the program name excluded): ``--a=b``, ``--a b`` and ``--a``."""
    out = Flags(source)
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if not t.text.startswith("-") or t.text in ("-", "--"):
            out.args.append(t.text)
            i += 1
            continue
        name, eq, value = t.text.lstrip("-").partition("=")
        if not eq:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt is not None and nxt.text and not nxt.text.startswith("-"):
                value, i = nxt.text, i + 1  # --a b (a boolean flag is written --a or --a=false)
            else:
                value = "true"
        out.values[name] = (value, Evidence(t.file, t.line, value))
        i += 1
    return out


def yaml_lookup(doc: Any, path: Sequence[str]) -> tuple[Any, int | None]:
    """The value at `path` in a YAML mapping read by :meth:`NodeFS.yaml` and the line of its key;
    (None, None) when any step is missing."""
    node, line = doc, None
    for key in path:
        if not isinstance(node, YMap) or key not in node:
            return None, None
        line = node.marks[key][0] if key in node.marks else node.line
        node = node[key]
    return node, line


def _toml_line(text: str, key: str) -> int | None:
    pat = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=", re.M)
    m = pat.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


class NodeFS:
    """The node's files under `root`, and what could not be read."""

    def __init__(self, root: str = "/") -> None:
        self.root = os.path.abspath(root)
        self.problems: list[SourceError] = []
        self._cache: dict[str, Any] = {}

    def host(self, path: str) -> str:
        """The path on this machine of node path `path` (absolute links resolved in the root)."""
        p = os.path.join(self.root, path.lstrip("/"))
        for _ in range(16):
            if not os.path.islink(p):
                break
            target = os.readlink(p)
            p = (
                os.path.join(self.root, target.lstrip("/"))
                if target.startswith("/")
                else os.path.join(os.path.dirname(p), target)
            )
        return p

    def exists(self, path: str) -> bool:
        """Whether node path `path` exists."""
        return os.path.exists(self.host(path))

    def first(self, paths: Iterable[str]) -> str | None:
        """The first of `paths` that exists on the node."""
        return next((p for p in paths if self.exists(p)), None)

    def stat(self, path: str) -> os.stat_result | None:
        """The status of `path` (None when missing)."""
        try:
            return os.stat(self.host(path))
        except OSError:
            return None

    def is_dir(self, path: str) -> bool:
        """Whether `path` is a directory."""
        st = self.stat(path)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def glob(self, pattern: str) -> list[str]:
        """Node paths matching `pattern` (``**`` matches any depth), sorted."""
        base = self.root.rstrip("/")
        return sorted(
            "/" + os.path.relpath(p, self.root)
            for p in glob.glob(base + "/" + pattern.lstrip("/"), recursive=True)
        )

    def read(self, path: str) -> str | None:
        """The text of `path` (None when missing or unreadable)."""
        try:
            with open(self.host(path), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    def problem(self, message: str, path: str, line: int | None = None) -> None:
        """Record that `path` could not be read as needed (once per file and message)."""
        err = SourceError(message, Location(path, line))
        if all(str(p) != str(err) for p in self.problems):
            self.problems.append(err)

    def yaml(self, path: str) -> YMap | None:
        """The first document of a YAML (or JSON) file as a mapping with lines; None when missing
        or broken (a problem is recorded)."""
        key = f"yaml:{path}"
        if key not in self._cache:
            self._cache[key] = None
            text = self.read(path)
            if text is not None:
                try:
                    docs = [d for d in load_all(text) if d is not None]
                except YamlError as e:
                    self.problem(f"not valid YAML: {e.message}", path, e.line)
                else:
                    if docs and isinstance(docs[0], YMap):
                        self._cache[key] = docs[0]
                    else:
                        self.problem("not a YAML mapping", path, 1)
        doc: YMap | None = self._cache[key]
        return doc

    def toml(self, path: str) -> tuple[dict[str, Any], str] | None:
        """A TOML file and its text (for lines); None when missing or broken (a problem recorded)."""
        key = f"toml:{path}"
        if key not in self._cache:
            self._cache[key] = None
            text = self.read(path)
            if text is not None:
                try:
                    self._cache[key] = (tomllib.loads(text), text)
                except tomllib.TOMLDecodeError as e:
                    m = re.search(r"line (\d+)", str(e))
                    self.problem(f"not valid TOML: {e}", path, int(m.group(1)) if m else None)
        doc: tuple[dict[str, Any], str] | None = self._cache[key]
        return doc

    def toml_value(self, path: str, keys: Sequence[str]) -> tuple[Any, Evidence] | None:
        """The value at `keys` in TOML file `path` with its evidence (the line is the first line
        that sets the last key); None when the file or the key is missing."""
        doc = self.toml(path)
        if doc is None:
            return None
        node: Any = doc[0]
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return None
            node = node[k]
        return node, Evidence(path, _toml_line(doc[1], keys[-1]), _text(node))

    # -- command lines -------------------------------------------------------------------------

    def processes(self, program: str) -> Iterator[tuple[str, list[str]]]:
        """(pid, argv) of every process under the root's /proc running `program` (its argv[0]
        basename, or ``hyperkube <program>``)."""
        for cmdline in self.glob("/proc/[0-9]*/cmdline"):
            raw = self.read(cmdline)
            if not raw:
                continue
            argv = raw.rstrip("\0").split("\0")
            base = os.path.basename(argv[0])
            if base == program:
                yield cmdline.split("/")[2], argv[1:]
            elif base == "hyperkube" and argv[1:2] == [program]:
                yield cmdline.split("/")[2], argv[2:]

    def process_flags(self, program: str) -> Flags | None:
        """The flags of the first running `program` (None when none runs)."""
        for pid, argv in self.processes(program):
            where = f"/proc/{pid}/cmdline"
            return parse_flags([Token(a, where) for a in argv], f"process {pid}")
        return None

    def unit_files(self, unit: str) -> list[str]:
        """A systemd unit's file and drop-ins, in the order systemd applies them."""
        files: list[str] = []
        main = self.first(f"{d}/{unit}" for d in UNIT_DIRS)
        if main:
            files.append(main)
        drop: dict[str, str] = {}
        for d in reversed(UNIT_DIRS):  # /etc overrides a drop-in of the same name elsewhere
            for p in self.glob(f"{d}/{unit}.d/*.conf"):
                drop[os.path.basename(p)] = p
        return files + [drop[k] for k in sorted(drop)]

    def unit_flags(self, unit: str) -> Flags | None:
        """The flags of a systemd unit's ``ExecStart=`` (None when the unit is not there)."""
        files = self.unit_files(unit)
        return self.systemd_flags(files, f"systemd {unit}") if files else None

    def systemd_flags(self, files: Sequence[str], source: str) -> Flags | None:
        """The flags of the last ``ExecStart=`` of `files` (unit then drop-ins), ``$VAR`` and
        ``${VAR}`` expanded from ``Environment=`` and ``EnvironmentFile=``."""
        env: dict[str, tuple[str, str, int]] = {}
        exec_start: tuple[str, str, int] | None = None
        for path in files:
            for line_no, key, value in _unit_lines(self.read(path) or ""):
                if key == "Environment":
                    for word in _split(value):
                        name, _, v = word.partition("=")
                        env[name] = (v, path, line_no)
                elif key == "EnvironmentFile":
                    ef = value.lstrip("-").strip()
                    for n, k, v in _env_lines(self.read(ef) or ""):
                        env[k] = (v, ef, n)
                elif key == "ExecStart":
                    exec_start = (value, path, line_no) if value.strip() else None
        if exec_start is None:
            return None
        text, path, line_no = exec_start
        tokens: list[Token] = []
        for word in _split(text.lstrip("-@+!:")):
            m = re.fullmatch(r"\$\{?(\w+)\}?", word)
            if m:
                v, vfile, vline = env.get(m.group(1), ("", path, line_no))
                tokens.extend(Token(w, vfile, vline) for w in _split(v))
            else:
                expanded = re.sub(r"\$\{(\w+)\}", lambda mm: env.get(mm.group(1), ("",))[0], word)
                tokens.append(Token(expanded, path, line_no))
        return parse_flags(tokens[1:], source)

    def manifest_flags(self, path: str) -> Flags | None:
        """The flags of a static pod manifest's first container (``command`` then ``args``)."""
        doc = self.yaml(path)
        if doc is None:
            return None
        containers, _ = yaml_lookup(doc, ("spec", "containers"))
        if not isinstance(containers, YSeq) or not containers or not isinstance(containers[0], YMap):
            self.problem("a static pod manifest without spec.containers", path, doc.line)
            return None
        c = containers[0]
        tokens: list[Token] = []
        for key in ("command", "args"):
            words = c.get(key)
            if isinstance(words, YSeq):
                tokens.extend(
                    Token(str(w), path, words.marks[i][0] if i < len(words.marks) else words.line)
                    for i, w in enumerate(words)
                    if isinstance(w, str)
                )
        if tokens and not tokens[0].text.startswith("-"):
            tokens = tokens[1:]
        return parse_flags(tokens, f"manifest {path}")

    def flags_file(self, path: str) -> Flags:
        """Flags from a file the user gave: a systemd unit or drop-in, or words of flags."""
        text = self.read(path)
        if text is None:
            raise SourceError("cannot read the flags file", Location(path))
        if re.search(r"^\s*(ExecStart|Environment)\s*=", text, re.M):
            flags = self.systemd_flags([path], f"file {path}")
            if flags is not None:
                return flags
        tokens = [
            Token(w, path, n)
            for n, line in enumerate(text.splitlines(), 1)
            if not line.lstrip().startswith("#")
            for w in _split(line)
        ]
        if tokens and not tokens[0].text.startswith("-"):
            tokens = tokens[1:]
        return parse_flags(tokens, f"file {path}")


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(_text(x) for x in v)
    return str(v)


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:
        return text.split()


def _unit_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, key, value) of a unit file's assignments, continuation lines joined."""
    pending: tuple[int, str] | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if pending is not None:
            start, acc = pending
            line, n = acc + " " + line.strip(), start
            pending = None
        if line.endswith("\\"):
            pending = (n, line[:-1])
            continue
        s = line.strip()
        if not s or s[0] in "#;[" or "=" not in s:
            continue
        k, _, v = s.partition("=")
        yield n, k.strip(), v.strip()


def _env_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, name, value) of an environment file (``NAME=value``, quotes removed)."""
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s or s.startswith("#") or "=" not in s:
            continue
        k, _, v = s.partition("=")
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        yield n, k.strip().removeprefix("export "), v
