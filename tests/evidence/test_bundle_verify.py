"""Sealing and verifying bundles (no container needed): every kind of tampering is found and named;
input that is no bundle is a clear error (exit 2), never a traceback."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from stockade.audit.keys import NodeKey
from stockade.cli.main import main
from stockade.errors import UsageError
from stockade.evidence import custody
from stockade.evidence.bundle import Bundle, BundleWriter, bundle_id, list_bundles, resolve_bundle
from stockade.evidence.verify import verify_bundle


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command line run in this process: exit status, standard output, standard error."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sealed(tmp_path: Path) -> Bundle:
    data = tmp_path / "data"
    key = NodeKey.load_or_create(data)
    w = BundleWriter(data, bundle_id("0123456789abcdef"))
    w.write_json("summary.json", {"processes": 1})
    w.write_bytes("raw/environ/1", b"API_TOKEN=secret\0")
    w.write_bytes("fs/changes.tar", b"\0" * 1024)
    w.problem("something could not be read")
    return w.seal(key, {"target": {"container_id": "0123456789abcdef"}, "reason": "test"}, actor="tester")


def _copy(b: Bundle, tmp: Path) -> Path:
    dst = tmp / "copy" / b.id
    shutil.copytree(b.path, dst)
    for dirpath, _dirs, _files in os.walk(dst):
        os.chmod(dirpath, 0o700)  # a copy a non-root test can change
    for p in dst.rglob("*"):
        if p.is_file():
            os.chmod(p, 0o600)
    return dst


def test_sealed_bundle_is_read_only_listed_and_verifies(sealed: Bundle, tmp_path: Path) -> None:
    assert sealed.path.name == sealed.id and sealed.id.startswith("ev-") and "-0123456789ab-" in sealed.id
    assert oct(sealed.path.stat().st_mode & 0o777) == "0o500"
    assert oct((sealed.path / "raw" / "environ" / "1").stat().st_mode & 0o777) == "0o400"
    assert oct((sealed.path / "raw").stat().st_mode & 0o777) == "0o500"
    paths = {f["path"] for f in sealed.manifest["files"]}
    assert paths == {"summary.json", "raw/environ/1", "fs/changes.tar"}
    assert sealed.manifest["problems"] == ["something could not be read"]
    r = verify_bundle(sealed.path)
    assert r.ok, r.problems
    assert r.key_source == "node" and r.files_checked == 3 and r.custody_entries == 1
    assert [b.id for b in list_bundles(tmp_path / "data")] == [sealed.id]
    assert resolve_bundle(sealed.id[:12], tmp_path / "data") == sealed.path
    # a copy elsewhere verifies with the key the manifest records, or with the node's public key
    copy = _copy(sealed, tmp_path)
    r = verify_bundle(copy)
    assert r.ok and r.key_source == "manifest"
    assert verify_bundle(copy, tmp_path / "data" / "keys" / "signing.pub").ok


def test_custody_appends_stay_linked(sealed: Bundle) -> None:
    key = NodeKey.load_or_create(sealed.path.parent.parent)
    custody.append(sealed.path, key, actor="analyst", action="viewed")
    custody.append(sealed.path, key, actor="analyst", action="verified", note="intact")
    r = verify_bundle(sealed.path)
    assert r.ok and r.custody_entries == 3
    assert oct((sealed.path / "custody.jsonl").stat().st_mode & 0o777) == "0o400"


@pytest.mark.parametrize(
    ("tamper", "kind", "item"),
    [
        ("change", "changed", "raw/environ/1"),
        ("add", "added", "raw/extra.bin"),
        ("remove", "removed", "fs/changes.tar"),
        ("manifest", "signature", "manifest.json"),
        ("custody", "custody", "custody.jsonl:1"),
        ("custody-delete", "custody", "custody.jsonl"),
        ("signature-file", "removed", "manifest.sig"),
    ],
)
def test_tampering_is_found_and_named(
    sealed: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: str, kind: str, item: str
) -> None:
    b = _copy(sealed, tmp_path)
    match tamper:
        case "change":
            with open(b / "raw/environ/1", "ab") as f:
                f.write(b"X")
        case "add":
            (b / "raw" / "extra.bin").write_bytes(b"planted")
        case "remove":
            (b / "fs" / "changes.tar").unlink()
        case "manifest":
            m = orjson.loads((b / "manifest.json").read_bytes())
            m["reason"] = "something else"
            (b / "manifest.json").write_bytes(
                orjson.dumps(m, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
            )
        case "custody":
            line = (b / "custody.jsonl").read_bytes().replace(b'"actor":"tester"', b'"actor":"mallory"')
            (b / "custody.jsonl").write_bytes(line)
        case "custody-delete":
            (b / "custody.jsonl").unlink()
        case "signature-file":
            (b / "manifest.sig").unlink()
    r = verify_bundle(b)
    assert not r.ok
    assert r.first is not None and r.first.kind == kind and r.first.item == item, r.problems
    # the CLI: exit 1, the first problem named in the error line, no traceback
    code, out, err = cli(capsys, "evidence", "verify", str(b))
    assert code == 1, out + err
    assert f"broken: {item}" in err and err.startswith("stockade: error: ")
    assert f"{kind}: {item}" in out


def test_every_problem_is_reported(sealed: Bundle, tmp_path: Path) -> None:
    b = _copy(sealed, tmp_path)
    (b / "summary.json").write_bytes(b"{}")
    (b / "planted").write_bytes(b"x")
    (b / "raw" / "environ" / "1").unlink()
    r = verify_bundle(b)
    assert {(p.kind, p.item) for p in r.problems} == {
        ("changed", "summary.json"),
        ("added", "planted"),
        ("removed", "raw/environ/1"),
    }


def test_manifest_not_json_and_not_a_bundle(
    sealed: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = _copy(sealed, tmp_path)
    (b / "manifest.json").write_bytes(b"{not json")
    r = verify_bundle(b)
    assert r.first is not None and r.first.item == "manifest.json" and "not JSON" in r.first.message
    code, _out, err = cli(capsys, "evidence", "verify", str(b))
    assert code == 1 and "manifest.json: not JSON" in err
    code, _out, err = cli(capsys, "evidence", "show", str(b))
    assert code == 1 and "manifest.json" in err and "not JSON" in err
    with pytest.raises(UsageError, match="does not exist"):
        verify_bundle(tmp_path / "nowhere")
    code, _out, err = cli(capsys, "evidence", "verify", str(tmp_path))  # a directory that is no bundle
    assert code == 2 and "not an evidence bundle" in err
    # a path that does not exist: one line, exit 2 (main() turns every StockadeError into it)
    code, _out, err = cli(capsys, "evidence", "verify", str(tmp_path / "nowhere"))
    assert code == 2
    assert err.strip().splitlines() == [
        f"stockade: error: {tmp_path / 'nowhere'}: no such evidence bundle (the path does not exist)"
    ]


def test_a_different_key_is_refused(sealed: Bundle, tmp_path: Path) -> None:
    other = NodeKey.load_or_create(tmp_path / "other")
    r = verify_bundle(sealed.path, other.public)
    assert not r.ok and r.first is not None and r.first.kind == "signature"
    assert "signed by key" in r.first.message


def test_concurrent_custody_appends_stay_one_chain(sealed: Bundle) -> None:
    key = NodeKey.load_or_create(sealed.path.parent.parent)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: custody.append(sealed.path, key, actor=f"a{i}", action="viewed"), range(16)))
    r = verify_bundle(sealed.path)
    assert r.ok, r.problems
    assert r.custody_entries == 17
