"""AdmissionPolicies compiled once, and the decision on one request.

:class:`Engine` compiles each policy when made (the selected checks and their actions, the
registry prefixes, the keys and roots of its signature rules), so that a request costs only the
checks themselves. A request a policy does not match (operation, kind, namespace, selectors) is
not evaluated by it; a request no policy matches is allowed at once.

Each policy's failed rules have an action: ``deny`` denies the request (403 with every denying
message), ``warn`` allows it with a warning, ``audit`` allows it with an audit annotation. An
error while evaluating (the signature store or the scan results cannot be read, a check that
raises) follows the failure policy: fail-closed denies (500), fail-open allows with a warning and
the ``error`` audit annotation.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockade.k8s.admission.images import ImageRef, matches_prefix, parse_image
from stockade.k8s.admission.load import LoadedAdmissionPolicy
from stockade.k8s.admission.policy import Action, SignatureRule, VulnerabilitiesRule
from stockade.k8s.admission.refresh import Refreshed
from stockade.k8s.admission.review import Request
from stockade.k8s.admission.signatures import (
    Signature,
    Verifier,
    load_certificates,
    load_public_keys,
)
from stockade.k8s.admission.vulnindex import ImageResult, VulnIndex, severity_rank
from stockade.k8s.catalogue import WORKLOADS, Check, Context, evaluate, select
from stockade.k8s.objects import K8sObject, pod_template
from stockade.k8s.selectors import selects
from stockade.policy.model import PolicyError

__all__ = ["Decision", "Engine", "EvaluationError", "Outcome"]

_KEY = re.compile(r"[^A-Za-z0-9._-]")


class EvaluationError(Exception):
    """What keeps a policy from deciding a request (the failure policy then applies)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One failed rule of one policy."""

    policy: str
    rule: str  # check:<id> | images | vulnerabilities | signatures
    action: Action
    message: str

    @property
    def text(self) -> str:
        """``policy/rule: message``."""
        return f"{self.policy}/{self.rule}: {self.message}"


@dataclass(slots=True)
class Decision:
    """The verdict on one request and what it says."""

    allowed: bool = True
    code: int = 200
    matched: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The denial message (empty when allowed)."""
        if self.allowed:
            return ""
        denies = [o.text for o in self.outcomes if o.action == "deny"]
        parts = denies or [f"evaluation failed (fail-closed): {e}" for e in self.errors]
        return "stockade: denied by " + "; ".join(parts)

    @property
    def warnings(self) -> list[str]:
        """One warning per `warn` outcome and per error allowed (fail-open)."""
        out = [o.text for o in self.outcomes if o.action == "warn"]
        if self.allowed:
            out += [f"stockade: evaluation failed (fail-open): {e}" for e in self.errors]
        return out

    def audit(self) -> dict[str, str]:
        """Audit annotations: the decision, then each policy's failed rules, then the errors."""
        if not self.matched:
            return {}
        out = {"decision": "allow" if self.allowed else "deny", "policies": ",".join(self.matched)}
        for o in self.outcomes:
            key = _KEY.sub("-", f"{o.policy}.{o.rule}".replace(":", "."))[:63]
            out[key] = f"{o.action}: {o.message}"
        if self.errors:
            out["error"] = "; ".join(self.errors)
        return out


def _material(text: str, base: Path) -> bytes:
    """PEM given inline, or read from a file (relative to the policy's directory)."""
    if text.lstrip().startswith("-----BEGIN"):
        return text.encode()
    return (base / text).read_bytes()


def _verifier(rule: SignatureRule, lp: LoadedAdmissionPolicy, where: str) -> Verifier:
    try:
        keys = load_public_keys(_material(k, lp.base) for k in rule.keys)
        kl = rule.keyless
        if kl is None:
            return Verifier(keys=keys)
        return Verifier(
            keys=keys,
            roots=load_certificates(_material(r, lp.base) for r in kl.roots),
            identities=tuple((i.issuer, i.subject) for i in kl.identities),
            rekor_keys=load_public_keys(_material(k, lp.base) for k in kl.rekorKeys),
            keyless=True,
        )
    except (OSError, ValueError) as e:
        raise PolicyError(f"{where}: cannot load a key or certificate: {e}", lp.location) from None


@dataclass(slots=True)
class _Compiled:
    lp: LoadedAdmissionPolicy
    kinds: frozenset[str]
    checks: list[Check]
    actions: dict[str, Action]
    verifiers: list[tuple[SignatureRule, Verifier]]
    fail_closed: bool
    #: spec.match.objectSelector as the label matcher reads it (converted once, not per request)
    object_selector: dict[str, Any] | None

    @property
    def name(self) -> str:
        return self.lp.name


def _compile(lp: LoadedAdmissionPolicy, fail_closed: bool | None) -> _Compiled:
    spec = lp.policy.spec
    checks: list[Check] = []
    actions: dict[str, Action] = {}
    if spec.checks is not None:
        c = spec.checks
        checks = select(c.standard, c.severities, c.ids)
        actions = {x.id: c.action for x in checks} | {o.id: o.action for o in c.overrides}
    verifiers = [(r, _verifier(r, lp, f"spec.signatures[{i}]")) for i, r in enumerate(spec.signatures)]
    kinds = frozenset(spec.match.kinds) if spec.match.kinds is not None else WORKLOADS
    closed = spec.failurePolicy == "Fail" if fail_closed is None else fail_closed
    sel = spec.match.objectSelector
    return _Compiled(lp, kinds, checks, actions, verifiers, closed, None if sel is None else sel.model_dump())


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    meta = (obj or {}).get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def _lookup(indexes: Sequence[VulnIndex], ref: ImageRef) -> ImageResult | None:
    """The first result of `ref` (by digest, then by reference with its tag) in `indexes`."""
    tagged = ImageRef(ref.registry, ref.path, ref.tag, None) if ref.digest and ref.tag else None
    for index in indexes:
        result = index.lookup(ref) or (index.lookup(tagged) if tagged is not None else None)
        if result is not None:
            return result
    return None


def _over_thresholds(rule: VulnerabilitiesRule, result: ImageResult) -> list[str]:
    """What of `result` the rule's thresholds refuse."""
    counts = result.counts(rule.ignoreUnfixed)
    out: list[str] = []
    if rule.maxSeverity is not None:
        limit = severity_rank(rule.maxSeverity)
        above = sorted((severity_rank(s), s, n) for s, n in counts.items() if severity_rank(s) < limit)
        if above:
            out.append(", ".join(f"{n} {s}" for _r, s, n in above) + f" above {rule.maxSeverity}")
    for sev, most in rule.maxCounts.limits().items():
        if counts.get(sev, 0) > most:
            out.append(f"{counts[sev]} {sev} (at most {most})")
    if rule.denyKev and (kev := result.kev(rule.ignoreUnfixed)):
        out.append(f"{kev} known exploited (KEV)")
    return out


class Engine:
    """The policies, compiled, with the stores they read (scan results, signatures)."""

    def __init__(
        self,
        policies: Sequence[LoadedAdmissionPolicy],
        *,
        fail_closed: bool | None = None,
        scan_results: Sequence[Refreshed[VulnIndex]] = (),
        signatures: Refreshed[dict[str, list[Signature]]] | None = None,
    ) -> None:
        self.policies = [_compile(lp, fail_closed) for lp in policies]
        self.scan_results = list(scan_results)
        self.signatures = signatures
        self._verified: dict[tuple[int, str, float], str | None] = {}
        self._lock = threading.Lock()

    # -- matching --------------------------------------------------------------------------------
    def _matches(self, p: _Compiled, req: Request) -> bool:
        m = p.lp.policy.spec.match
        if req.operation not in m.operations or req.kind not in p.kinds:
            return False
        if req.namespace in m.excludedNamespaces:
            return False
        if m.namespaces is not None and req.namespace not in m.namespaces:
            return False
        # namespaceSelector: kube-apiserver applies it (a review carries no namespace labels)
        obj = req.object if req.object is not None else req.old_object
        return p.object_selector is None or selects(p.object_selector, _labels(obj))

    def decide(self, req: Request, policies: Sequence[str] | None = None) -> Decision:
        """The decision on `req` by every policy (or those named) that matches it."""
        d = Decision()
        for p in self.policies:
            if policies is not None and p.name not in policies:
                continue
            if not self._matches(p, req):
                continue
            d.matched.append(p.name)
            try:
                d.outcomes.extend(self._evaluate(p, req))
            except EvaluationError as e:
                d.errors.append(f"{p.name}: {e}")
                if p.fail_closed:
                    d.allowed, d.code = False, 500
        if any(o.action == "deny" for o in d.outcomes):
            d.allowed, d.code = False, 403
        return d

    # -- one policy ------------------------------------------------------------------------------
    def _evaluate(self, p: _Compiled, req: Request) -> list[Outcome]:
        body = req.object if req.object is not None else req.old_object
        if not isinstance(body, dict):
            return []
        obj = K8sObject(dict(body))
        if obj.namespace is None and req.namespace:
            obj = K8sObject({**body, "metadata": {**obj.metadata, "namespace": req.namespace}})
        out: list[Outcome] = []
        if p.checks:
            ctx = Context([obj], complete=False)
            for f in evaluate([obj], p.checks, ctx):
                out.append(
                    Outcome(p.name, f"check:{f.check}", p.actions[f.check], f"{f.message} ({f.field})")
                )
            if ctx.errors:
                raise EvaluationError("; ".join(f"check {c} raised {e}" for c, _o, e in ctx.errors))
        images = self._images(obj)
        spec = p.lp.policy.spec
        if spec.images is not None:
            out.extend(self._image_rules(p, images))
        if spec.vulnerabilities is not None:
            out.extend(self._vulnerabilities(p.name, spec.vulnerabilities, images))
        for i, (rule, verifier) in enumerate(p.verifiers):
            out.extend(self._signatures(p, i, rule, verifier, images))
        return out

    @staticmethod
    def _images(obj: K8sObject) -> list[tuple[str, ImageRef | str]]:
        """(written, parsed or why it cannot be) for every container image of the object."""
        pod = pod_template(obj)
        out: list[tuple[str, ImageRef | str]] = []
        for c in pod.containers() if pod is not None else ():
            text = c.get("image")
            if not isinstance(text, str):
                continue
            try:
                out.append((text, parse_image(text)))
            except ValueError as e:
                out.append((text, str(e)))
        return out

    @staticmethod
    def _image_rules(p: _Compiled, images: list[tuple[str, ImageRef | str]]) -> list[Outcome]:
        rule = p.lp.policy.spec.images
        assert rule is not None
        out: list[Outcome] = []
        for text, ref in images:
            if isinstance(ref, str):
                out.append(Outcome(p.name, "images", rule.action, ref))
                continue
            allowed = rule.allowedRegistries
            if allowed is not None and not any(matches_prefix(ref, a) for a in allowed):
                out.append(
                    Outcome(p.name, "images", rule.action, f"image {text!r} is from no allowed registry")
                )
            if rule.requireDigest and ref.digest is None:
                out.append(Outcome(p.name, "images", rule.action, f"image {text!r} is not pinned by digest"))
        return out

    def _vulnerabilities(
        self, policy: str, rule: VulnerabilitiesRule, images: list[tuple[str, ImageRef | str]]
    ) -> list[Outcome]:
        for store in self.scan_results:
            if store.built_at == 0 and store.error is not None:
                raise EvaluationError(f"the scan results cannot be read: {store.error}")
        indexes = [store.value for store in self.scan_results]
        out: list[Outcome] = []
        for text, ref in images:
            if isinstance(ref, str):
                continue
            result = _lookup(indexes, ref)
            if result is None:
                if rule.unknownImages != "allow":
                    why = f"image {text!r} has no cached scan result"
                    out.append(Outcome(policy, "vulnerabilities", rule.unknownImages, why))
                continue
            why_not = _over_thresholds(rule, result)
            if why_not:
                out.append(
                    Outcome(policy, "vulnerabilities", rule.action, f"image {text!r}: " + "; ".join(why_not))
                )
        return out

    def _signatures(
        self,
        p: _Compiled,
        index: int,
        rule: SignatureRule,
        verifier: Verifier,
        images: list[tuple[str, ImageRef | str]],
    ) -> list[Outcome]:
        out: list[Outcome] = []
        for text, ref in images:
            if isinstance(ref, str) or not any(i == "*" or matches_prefix(ref, i) for i in rule.images):
                continue
            if ref.digest is None:
                out.append(
                    Outcome(p.name, "signatures", rule.action, f"image {text!r} has no digest to verify")
                )
                continue
            why = self._verify(p, index, verifier, ref.digest)
            if why is not None:
                out.append(Outcome(p.name, "signatures", rule.action, f"image {text!r}: {why}"))
        return out

    def _verify(self, p: _Compiled, index: int, verifier: Verifier, digest: str) -> str | None:
        store = self.signatures
        if store is None:
            raise EvaluationError("no signature store (--signatures DIR)")
        if store.built_at == 0 and store.error is not None:
            raise EvaluationError(f"the signature store cannot be read: {store.error}")
        sigs = store.value.get(digest, [])
        if not sigs:
            return "no signature"
        key = (id(p), f"{index}:{digest}", store.built_at)
        with self._lock:
            if key in self._verified:
                return self._verified[key]
        reasons = [verifier.check(digest, s) for s in sigs]
        why = None if any(r is None for r in reasons) else "; ".join(r for r in reasons if r)
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = why
        return why
