"""The ``AdmissionPolicy`` document (``apiVersion: stockade.dev/v1alpha1``), as pydantic models.

::

    apiVersion: stockade.dev/v1alpha1
    kind: AdmissionPolicy
    metadata:
      name: prod
    spec:
      failurePolicy: Fail            # Fail (deny when evaluation errors) | Ignore (allow, warn)
      match:
        kinds: [Pod, Deployment]     # absent: every kind with a pod template
        operations: [CREATE, UPDATE] # CREATE | UPDATE | DELETE | CONNECT
        namespaces: [prod]           # absent: every namespace
        excludedNamespaces: [kube-system]   # the default
        namespaceSelector: {matchLabels: {env: prod}}
        objectSelector:
          matchExpressions: [{key: app, operator: In, values: [web]}]
      checks:
        standard: pss-baseline       # pss-baseline | pss-restricted | nsa | cis | all
        ids: [privileged-container]  # exactly these checks (standard still filters)
        severities: [CRITICAL, HIGH] # absent: every severity
        action: deny                 # deny | warn | audit
        overrides: [{id: privileged-container, action: warn}]
      images:
        allowedRegistries: [docker.io/library, registry.example.com:5000/team]
        requireDigest: true
        action: deny
      vulnerabilities:
        maxSeverity: MEDIUM          # a finding above MEDIUM fails
        maxCounts: {HIGH: 0, MEDIUM: 10}
        ignoreUnfixed: true
        denyKev: true                # a finding in CISA's KEV catalogue fails
        unknownImages: warn          # no cached result: allow | warn | deny
        action: deny
      signatures:
        - images: [registry.example.com/team]
          keys: [cosign.pub]         # PEM text, or a file (relative to the policy's file)
          keyless:
            roots: [fulcio-root.pem]
            identities: [{issuer: https://accounts.example.com, subject: ci@example.com}]
            rekorKeys: [rekor.pub]
          action: deny

Loading with file/line/field errors is :func:`stockade.policy.load.parse_documents`
(:func:`stockade.k8s.admission.load.load_admission_policies`); docs/k8s-admission.md is the reference.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from stockade.k8s.catalogue import STANDARDS, all_checks
from stockade.policy.model import Metadata

__all__ = [
    "KIND",
    "Action",
    "AdmissionPolicy",
    "AdmissionSpec",
    "CheckOverride",
    "ChecksRule",
    "Identity",
    "ImagesRule",
    "Keyless",
    "LabelSelector",
    "Match",
    "SelectorRequirement",
    "SeverityCounts",
    "SignatureRule",
    "VulnerabilitiesRule",
]

KIND = "AdmissionPolicy"

#: what a failed rule does: deny the request, allow it with a warning, or allow it and record it
Action = Literal["deny", "warn", "audit"]
Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


_DEFAULT_OPERATIONS: tuple[Operation, ...] = ("CREATE", "UPDATE")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SelectorRequirement(_Strict):
    """One ``matchExpressions`` item of a label selector."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit(self) -> SelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(_Strict):
    """A Kubernetes label selector: every matchLabels pair and every expression must hold."""

    matchLabels: dict[str, str] = Field(default_factory=dict)
    matchExpressions: list[SelectorRequirement] = Field(default_factory=list)


class Match(_Strict):
    """Which requests the policy looks at (the others are allowed without evaluation)."""

    kinds: list[str] | None = None
    operations: list[Operation] = Field(default_factory=lambda: list(_DEFAULT_OPERATIONS))
    namespaces: list[str] | None = None
    excludedNamespaces: list[str] = Field(default_factory=lambda: ["kube-system"])
    namespaceSelector: LabelSelector | None = None
    objectSelector: LabelSelector | None = None


def _check_id(v: str) -> str:
    known = {c.id for c in all_checks()}
    if v not in known:
        raise ValueError(f"no check {v!r} (`stockade k8s checks` lists them)")
    return v


def _check_reference_prefix(v: str) -> str:
    text = v.strip()
    if not text or "://" in text or text != v or text.endswith("/") or "@" in text:
        raise ValueError(
            f"{v!r} is not a registry or repository prefix (registry.example.com:5000/team, "
            "docker.io/library; no scheme, no trailing slash, no digest)"
        )
    return v


#: a check id of the catalogue
CheckId = Annotated[str, AfterValidator(_check_id)]
#: a registry or repository prefix (stockade.k8s.admission.images)
Prefix = Annotated[str, AfterValidator(_check_reference_prefix)]
#: a prefix, or ``*`` for every image
ImagePattern = Annotated[str, AfterValidator(lambda v: v if v == "*" else _check_reference_prefix(v))]


class CheckOverride(_Strict):
    """The action of one check, instead of the checks' action."""

    id: CheckId
    action: Action


class ChecksRule(_Strict):
    """Catalogue checks run on the object."""

    standard: str = "all"
    ids: list[CheckId] | None = None
    severities: list[Severity] | None = None
    action: Action = "deny"
    overrides: list[CheckOverride] = Field(default_factory=list)

    @field_validator("standard")
    @classmethod
    def _known_standard(cls, v: str) -> str:
        if v not in STANDARDS:
            raise ValueError(f"{v!r} is not one of {', '.join(STANDARDS)}")
        return v


class ImagesRule(_Strict):
    """Where images may come from and how they are named."""

    allowedRegistries: list[Prefix] | None = None
    requireDigest: bool = False
    action: Action = "deny"


class SeverityCounts(_Strict):
    """At most this many findings of a severity (absent: no limit)."""

    CRITICAL: int | None = Field(default=None, ge=0)
    HIGH: int | None = Field(default=None, ge=0)
    MEDIUM: int | None = Field(default=None, ge=0)
    LOW: int | None = Field(default=None, ge=0)

    def limits(self) -> dict[str, int]:
        """The limits given, by severity."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class VulnerabilitiesRule(_Strict):
    """Thresholds over the cached scan result of each image (never a scan at admission)."""

    maxSeverity: Severity | None = None
    maxCounts: SeverityCounts = Field(default_factory=SeverityCounts)
    ignoreUnfixed: bool = False
    denyKev: bool = False
    unknownImages: Literal["allow", "warn", "deny"] = "warn"
    action: Action = "deny"


class Identity(_Strict):
    """A keyless signer: the certificate's OIDC issuer and subject (email or URI), exact."""

    issuer: str | None = None
    subject: str | None = None


class Keyless(_Strict):
    """Certificates chained to one of `roots` (PEM text or files); `rekorKeys` verify the
    transparency log's signed entry timestamps when given."""

    roots: list[str] = Field(min_length=1)
    identities: list[Identity] = Field(default_factory=list)
    rekorKeys: list[str] = Field(default_factory=list)


class SignatureRule(_Strict):
    """Images (by reference prefix; ``*`` for all) that must carry a valid signature by one of
    `keys` or, with `keyless`, by a certificate chained to its roots."""

    images: list[ImagePattern] = Field(default_factory=lambda: ["*"])
    keys: list[str] = Field(default_factory=list)
    keyless: Keyless | None = None
    action: Action = "deny"

    @model_validator(mode="after")
    def _some_verifier(self) -> SignatureRule:
        if not self.keys and self.keyless is None:
            raise ValueError("a signature rule needs keys or keyless")
        return self


class AdmissionSpec(_Strict):
    """What the policy matches and what it requires."""

    failurePolicy: Literal["Fail", "Ignore"] = "Fail"
    match: Match = Field(default_factory=Match)
    checks: ChecksRule | None = None
    images: ImagesRule | None = None
    vulnerabilities: VulnerabilitiesRule | None = None
    signatures: list[SignatureRule] = Field(default_factory=list)


class AdmissionPolicy(_Strict):
    """One AdmissionPolicy document."""

    apiVersion: Literal["stockade.dev/v1alpha1"]
    kind: Literal["AdmissionPolicy"]
    metadata: Metadata
    spec: AdmissionSpec = Field(default_factory=AdmissionSpec)
