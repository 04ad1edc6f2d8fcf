"""Images: mutable tags, digests, the pull policy and where images may come from.

``allowed-registries`` is silent unless the caller configures it: put the allowed registries (or
registry/repository prefixes) under :data:`ALLOWED_REGISTRIES` in the scan's
:attr:`Context.cache` (``configure_registries(ctx, ["registry.acme.io", "ghcr.io/acme"])``). A
short name (``nginx``) is on ``docker.io``; ``docker.io/library`` allows the official images.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import ImageRef, parse_image, pod_of
from stockade.k8s.objects import Container, K8sObject

__all__ = ["ALLOWED_REGISTRIES", "allowed_registries", "configure_registries"]

#: the Context.cache key of the allowed registries (a tuple of prefixes)
ALLOWED_REGISTRIES: Final = "allowed_registries"


def configure_registries(ctx: Context, registries: Iterable[str]) -> None:
    """Make `allowed-registries` enforce `registries` (``host[:port]`` or ``host/path`` prefixes)
    for the scan of `ctx`."""
    ctx.cache[ALLOWED_REGISTRIES] = tuple(r.strip().rstrip("/").lower() for r in registries if r.strip())


def allowed_registries(ctx: Context) -> tuple[str, ...]:
    """The registries configured for `ctx` (empty: the check is off)."""
    value = ctx.cache.get(ALLOWED_REGISTRIES)
    if isinstance(value, str):
        return (value.rstrip("/").lower(),)
    if isinstance(value, tuple | list | frozenset | set):
        return tuple(str(v).rstrip("/").lower() for v in value)
    return ()


def _images(obj: K8sObject, ctx: Context) -> Iterator[tuple[Container, str]]:
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers():
        image = c.body.get("image")
        yield c, image if isinstance(image, str) else ""


@check(
    "image-tag-latest",
    severity="MEDIUM",
    title="Image without a fixed tag",
    description=(
        "An image with no tag or :latest changes under the workload: what runs is not what was "
        "reviewed or scanned, and a rollback does not roll back."
    ),
    remediation="Pin a version tag, or better a digest (image@sha256:...).",
    fix="image: registry.example.com/app:1.4.2@sha256:<digest>\n",
)
def image_tag_latest(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Images with no tag or tag latest, unless pinned by digest."""
    for c, image in _images(obj, ctx):
        ref = parse_image(image)
        if ref.digest is None and ref.tag in (None, "latest"):
            said = "latest" if ref.tag else "no tag"
            yield Violation(f"container {c.name!r} image {image!r} has {said}", (*c.path, "image"))


@check(
    "image-digest",
    severity="LOW",
    title="Image not pinned by digest",
    description=(
        "A tag can be moved to other content by whoever can push to the repository; only a digest "
        "names exactly the image that was scanned and signed."
    ),
    remediation="Reference the image by digest: image: repo:tag@sha256:<digest>.",
    fix="image: registry.example.com/app:1.4.2@sha256:<digest>\n",
)
def image_digest(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Images without an @sha256 digest."""
    for c, image in _images(obj, ctx):
        if not (parse_image(image).digest or "").startswith("sha256:"):
            yield Violation(
                f"container {c.name!r} image {image!r} is not pinned by digest", (*c.path, "image")
            )


@check(
    "image-pull-policy",
    severity="LOW",
    title="Image pull policy not Always",
    description=(
        "With IfNotPresent a node reuses whatever image it cached under the tag, and a pod may run "
        "an image its pull secret would not grant."
    ),
    remediation="Set imagePullPolicy: Always (or pin images by digest).",
    fix="imagePullPolicy: Always\n",
)
def image_pull_policy(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Checkov CKV_K8S_15: a set imagePullPolicy must be Always; unset, the image must have no tag
    or :latest (Kubernetes then defaults it to Always). An image pinned by digest passes: the node
    can only run the very image named, whatever it cached (as Checkov and the remediation say)."""
    for c, image in _images(obj, ctx):
        if parse_image(image).digest:
            continue
        policy = c.body.get("imagePullPolicy")
        if policy is None:
            ref = parse_image(image)
            if ref.tag not in (None, "latest"):
                yield Violation(
                    f"container {c.name!r} image {image!r}: imagePullPolicy defaults to IfNotPresent", c.path
                )
        elif policy != "Always":
            yield Violation(f"container {c.name!r} imagePullPolicy is {policy}", (*c.path, "imagePullPolicy"))


def _allowed(ref: ImageRef, allowed: tuple[str, ...]) -> bool:
    name = ref.name.lower()
    return any(name == a or name.startswith(a + "/") for a in allowed)


@check(
    "allowed-registries",
    severity="HIGH",
    title="Image from a registry not allowed",
    description=(
        "An image from outside the registries the organisation controls and scans can be anything; "
        "this check runs only when the allowed registries are configured."
    ),
    remediation="Mirror the image into an allowed registry and reference it there.",
    fix="image: registry.example.com/app:1.4.2\n",
    nsa=True,
    cis=("5.5.1",),
)
def allowed_registries_check(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Images whose registry/repository is under none of the configured prefixes."""
    allowed = allowed_registries(ctx)
    if not allowed:
        return
    for c, image in _images(obj, ctx):
        ref = parse_image(image)
        if not _allowed(ref, allowed):
            yield Violation(
                f"container {c.name!r} image {image!r} is from {ref.registry}, not an allowed registry",
                (*c.path, "image"),
            )
