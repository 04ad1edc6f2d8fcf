"""`stockade up` as users run it: a certificate that expires in 10 days, served by a TLS server the
test starts on loopback, raises "Certificate expiring soon" (attributed to the host), as does a PEM
file in a scanned directory; `stockade certs` lists them from the API. In the same run, a podman
container that deletes a watched file (/etc/passwd) raises "Container drift in watched path",
and `stockade drift` (through the API) lists the deletion. One `stockade up` for both: it takes
seconds to start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_until
from tlsgen import TLSServer, fingerprint, key_pem, make_cert, pem


def _alerts(up: Any, rule: str) -> list[dict[str, Any]]:
    return [a for a in up.api("/alerts", limit=1000)["items"] if a["rule"] == rule]


@pytest.mark.root
@pytest.mark.containers
@pytest.mark.slow
def test_up_alerts_on_an_expiring_served_certificate_and_a_deleted_watched_file(
    tmp_path: Path, podman_container: Any, stockade_up: Any
) -> None:
    leaf, key = make_cert("expiring.test", 10, sans=("expiring.test",))
    on_disk, _ = make_cert("disk.test", 5, ec_key=True)
    chain, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(pem(leaf))
    key_file.write_bytes(key_pem(key))
    certdir = tmp_path / "certs"
    certdir.mkdir()
    (certdir / "disk.crt").write_bytes(pem(on_disk))
    ctr = podman_container()
    config = {
        "certs": {"enabled": True, "interval_s": 2, "locations": [str(certdir)], "warn_days": 30},
        "drift": {"enabled": True, "interval_s": 1},
    }
    with TLSServer(chain, key_file) as srv:
        up = stockade_up(config)
        up.start()
        where = f"tcp://127.0.0.1:{srv.port}"

        def served_alert() -> list[dict[str, Any]]:
            return [
                a
                for a in _alerts(up, "Certificate expiring soon")
                if a["output_fields"]["cert.location"] == where
            ]

        assert wait_until(lambda: bool(served_alert()), timeout=90, step=0.5), up.log()[-3000:]
        [a] = served_alert()
        of = a["output_fields"]
        assert of["cert.sha256"] == fingerprint(leaf) and of["container.id"] == "host"
        assert 9 < of["cert.days_left"] <= 10 and a["priority"] == "Warning" and a["source"] == "certs"
        disk = [
            x
            for x in _alerts(up, "Certificate expiring soon")
            if x["output_fields"]["cert.sha256"] == fingerprint(on_disk)
        ]
        assert [x["output_fields"]["cert.location"] for x in disk] == [str(certdir / "disk.crt")]
        r = up.cli("certs", "--expiring", "15", "--output", "json")
        assert r.returncode == 0, r.stderr
        listed = {(i["location"], i["sha256"]) for i in map(json.loads, r.stdout.splitlines())}
        assert {(where, fingerprint(leaf)), (str(certdir / "disk.crt"), fingerprint(on_disk))} <= listed

    # drift: deleting a watched file in a running container
    assert ctr.exec(["rm", "/etc/passwd"]).returncode == 0

    def drift_alert() -> list[dict[str, Any]]:
        return [
            x
            for x in _alerts(up, "Container drift in watched path")
            if x["output_fields"].get("container.full_id") == ctr.id
        ]

    assert wait_until(lambda: bool(drift_alert()), timeout=60, step=0.5), up.log()[-3000:]
    [d] = drift_alert()
    assert (
        d["output_fields"]["fd.name"] == "/etc/passwd"
        and d["output_fields"]["stockade.drift.change"] == "deleted"
    )
    assert d["output_fields"]["container.name"] == ctr.name and d["priority"] == "Error"
    r = up.cli("drift", ctr.name, "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(c["path"], c["change"], c["watched"]) for c in doc["changes"]] == [
        ("/etc/passwd", "deleted", "/etc/passwd")
    ]
    assert doc["alerts_raised"] == 0  # alerted once already
    gone = up.cli("drift", "no-such-container-xyz")
    assert gone.returncode == 3 and "no running container 'no-such-container-xyz'" in gone.stderr
    up.stop()
