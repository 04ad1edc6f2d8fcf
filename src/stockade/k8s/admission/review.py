"""AdmissionReview v1 (``admission.k8s.io/v1``) as kube-apiserver sends it, and the response.

:func:`parse_review` reads a request body (a :class:`ReviewError`, answered 400, saying what is
wrong); :func:`response` builds the AdmissionReview returned: ``response.uid`` (the request's),
``allowed``, ``status`` ``{code, message, reason}`` when denied, ``warnings`` (each under 120
characters, as Kubernetes recommends) and ``auditAnnotations``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from stockade.errors import SourceError

__all__ = [
    "API_VERSION",
    "MAX_WARNING",
    "Request",
    "ReviewError",
    "as_review",
    "parse_review",
    "response",
    "short",
]

API_VERSION = "admission.k8s.io/v1"
MAX_WARNING = 119  # characters: Kubernetes recommends warnings under 120


class ReviewError(SourceError):
    """A body that is no AdmissionReview v1 request."""

    title = "Invalid AdmissionReview"


@dataclass(frozen=True, slots=True)
class Request:
    """The fields of ``request`` the evaluation reads."""

    uid: str
    kind: str
    operation: str
    namespace: str
    name: str
    resource: str = ""
    sub_resource: str = ""
    object: Mapping[str, Any] | None = None
    old_object: Mapping[str, Any] | None = None
    dry_run: bool = False
    user: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


def _text(d: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    v = d.get(key)
    if v is None:
        if required:
            raise ReviewError(f"{where}.{key} is required")
        return ""
    if not isinstance(v, str):
        raise ReviewError(f"{where}.{key} must be a string")
    return v


def _mapping(d: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    v = d.get(key)
    if v is not None and not isinstance(v, dict):
        raise ReviewError(f"{where}.{key} must be an object")
    return v


def parse_review(body: bytes) -> Request:
    """The request of an AdmissionReview v1 body (a ReviewError saying what is wrong)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ReviewError(f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ReviewError("the body is not a JSON object")
    if doc.get("kind") != "AdmissionReview" or doc.get("apiVersion") != API_VERSION:
        raise ReviewError(
            f"expected an AdmissionReview of apiVersion {API_VERSION}, got kind {doc.get('kind')!r} "
            f"apiVersion {doc.get('apiVersion')!r}"
        )
    req = _mapping(doc, "request", "")
    if req is None:
        raise ReviewError("request is required")
    kind = _mapping(req, "kind", "request") or {}
    res = _mapping(req, "resource", "request") or {}
    user = _mapping(req, "userInfo", "request") or {}
    dry = req.get("dryRun", False)
    if not isinstance(dry, bool):
        raise ReviewError("request.dryRun must be true or false")
    return Request(
        uid=_text(req, "uid", "request", required=True),
        kind=_text(kind, "kind", "request.kind", required=True),
        operation=_text(req, "operation", "request", required=True),
        namespace=_text(req, "namespace", "request"),
        name=_text(req, "name", "request"),
        resource=_text(res, "resource", "request.resource"),
        sub_resource=_text(req, "subResource", "request"),
        object=_mapping(req, "object", "request"),
        old_object=_mapping(req, "oldObject", "request"),
        dry_run=dry,
        user=str(user.get("username") or ""),
        raw=req,
    )


def as_review(obj: Mapping[str, Any], operation: str = "CREATE", namespace: str | None = None) -> bytes:
    """An AdmissionReview request for a bare object (`stockade k8s admission review OBJECT`)."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    api = str(obj.get("apiVersion") or "v1")
    group, _, version = api.rpartition("/")
    req = {
        "uid": "00000000-0000-0000-0000-000000000000",
        "kind": {"group": group, "version": version, "kind": obj.get("kind")},
        "operation": operation,
        "namespace": namespace or (meta or {}).get("namespace") or "default",
        "name": (meta or {}).get("name") or "",
        "object": obj,
        "dryRun": False,
        "userInfo": {"username": "stockade-review"},
    }
    return orjson.dumps({"apiVersion": API_VERSION, "kind": "AdmissionReview", "request": req})


def short(text: str) -> str:
    """`text` cut to a Kubernetes warning's recommended length."""
    return text if len(text) <= MAX_WARNING else text[: MAX_WARNING - 1] + "…"


def response(
    uid: str,
    allowed: bool,
    *,
    message: str = "",
    code: int = 403,
    warnings: list[str] | None = None,
    audit: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The AdmissionReview v1 response document."""
    r: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        r["status"] = {
            "code": code,
            "message": message,
            "reason": "Forbidden" if code == 403 else "InternalError",
        }
    if warnings:
        r["warnings"] = [short(w) for w in warnings]
    if audit:
        r["auditAnnotations"] = dict(audit)
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": r}
