"""Certificates: every certificate the node's latest scan found on disk (host and containers) and
served on its listening ports, with a summary and the problems met (docs/certificates.md).

Served where certificates are scanned (`stockade up`, `stockade agent`); elsewhere 409 (no-certs).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from stockade.api.deps import RuntimeDep
from stockade.api.params import STRICT_QUERY
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths

router = APIRouter(tags=["certificates"])


class CertItem(BaseModel):
    """A certificate and where it was found."""

    subject: str
    issuer: str
    sans: list[str]
    serial: str = Field(description="The serial number, hexadecimal")
    key_type: str
    key_size: int | None
    not_before: str
    not_after: str
    days_left: float = Field(description="Days until it expires (negative: expired)")
    expired: bool
    sha256: str = Field(description="SHA-256 fingerprint of the DER certificate")
    self_signed: bool
    ca: bool
    source: str = Field(description="file, or served (a TLS handshake over loopback)")
    location: str = Field(description="The path inside its root, or tcp://127.0.0.1:PORT")
    format: str = Field(description="pem, der, pkcs12, pkcs7, jks, jceks, or tls")
    entry: str = Field(description="Alias in a keystore, index in a bundle or served chain")
    container_id: str = Field(description="The container's full id; empty on the host")
    container_name: str | None = None
    trust_store: bool = Field(description="Part of a trust store: counted, never alerted one by one")


class CertList(BaseModel):
    """The latest scan: its time (epoch seconds; null before the first), the certificates, a
    summary (counts by kind, trust stores) and the files that could not be read."""

    scanned_at: float | None
    items: list[CertItem]
    total: int
    summary: dict[str, Any]
    problems: list[str]


@router.get(
    paths.CERTS,
    response_model=CertList,
    summary="The certificates found on the node's disks and served on its ports",
    responses=problem_responses(409, 422),
    dependencies=[STRICT_QUERY],
)
def list_certs(
    runtime: RuntimeDep,
    expiring: Annotated[
        float | None, Query(ge=0, description="Only those expiring within this many days (expired included)")
    ] = None,
) -> dict[str, Any]:
    """Every certificate of the latest scan (``certs.interval_s``), with where it was found."""
    return runtime.certs().latest(expiring)
