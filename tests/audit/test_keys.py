"""The node's signing key: made once, 0600, reused, and its signatures checked."""

from __future__ import annotations

import os
from pathlib import Path

from stockade.audit.keys import NodeKey, load_public_key, verify_signature


def test_key_is_made_once_private_and_verifies(tmp_path: Path) -> None:
    key = NodeKey.load_or_create(tmp_path)
    priv = tmp_path / "keys" / "signing.key"
    assert os.stat(priv).st_mode & 0o077 == 0
    again = NodeKey.load_or_create(tmp_path)
    assert again.key_id == key.key_id
    sig = key.sign(b"checkpoint 7")
    public = load_public_key(tmp_path / "keys" / "signing.pub")
    assert verify_signature(public, b"checkpoint 7", sig)
    assert not verify_signature(public, b"checkpoint 8", sig)
    assert not verify_signature(public, b"checkpoint 7", "not base64!")
    other = NodeKey.load_or_create(tmp_path / "other")
    assert not other.verify(b"checkpoint 7", sig)
