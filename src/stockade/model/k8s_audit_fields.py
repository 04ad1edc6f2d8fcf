"""The fields of Kubernetes audit events: Falco's k8saudit plugin (``ka.*``) and json plugin (``jevt.*``,
``json.*``).

An event of source ``k8s_audit`` is an ``audit.k8s.io`` Event object as the API server wrote it;
each extractor reads it the way the plugins do. Every field is a string (as in the plugins): booleans
are ``"true"``/``"false"``, numbers their decimal text, objects and arrays their compact JSON. List
fields (``ka.user.groups``, ``ka.req.pod.containers.image``, ...) yield a Python list, one value per
item (per container, per volume, per subject...); an optional index argument
(``ka.req.pod.containers.image[0]``) selects one item.

An event may instead be a flat dict keyed by field names (a Falco alert's ``output_fields``, or a
value a rule already read): when the dict holds the field's key, that value is used as is.

Missing values are ``None``: every comparison on them is false, as in Falco. Where the plugin's code
disagrees with its own documentation, the documented meaning is implemented (see docs/k8s-audit.md,
"Differences from the Falco plugin").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from stockade.model.event import K8S_AUDIT
from stockade.model.fieldspec import ArgKind, Extractor, FieldSpec, FieldType, register
from stockade.model.images import split_image
from stockade.model.timeutil import event_time_ns, format_time_ns

__all__ = ["json_pointer", "json_text", "register_k8s_audit_fields"]

#: (event, arg) -> value or None
Getter = Callable[[dict[str, Any], str | None], Any]
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


# ---------------------------------------------------------------------------------------------
# value helpers
# ---------------------------------------------------------------------------------------------


def json_text(v: Any) -> str:
    """A JSON value as the plugins print it: a string as is, anything else as compact JSON."""
    if isinstance(v, str):
        return v
    return orjson.dumps(v).decode()


def _dig(v: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(v, dict):
            return None
        v = v.get(k)
    return v


def _text(v: Any) -> str | None:
    return None if v is None else json_text(v)


def _texts(values: Any) -> list[str] | None:
    """A JSON array as a list of strings (None if not an array or empty)."""
    if not isinstance(values, list):
        return None
    out = [json_text(x) for x in values if x is not None]
    return out or None


def _index(arg: str | None) -> int | None:
    """The index argument: None for "every item", -1 for an argument that is not an index."""
    if arg is None or arg == "":
        return None
    try:
        i = int(arg)
    except ValueError:
        return -1
    return i if i >= 0 else -1


def _select(items: Any, arg: str | None) -> list[Any] | None:
    """Items of a JSON array, or the one the index argument selects; None if not available."""
    if not isinstance(items, list):
        return None
    i = _index(arg)
    if i is None:
        return items
    if i < 0 or i >= len(items):
        return None
    return [items[i]]


def _flat(v: Any, is_list: bool) -> Any:
    """A value read from a flat dict (Falco alert output_fields) in the shape the field has."""
    if is_list:
        if isinstance(v, list):
            return [json_text(x) for x in v]
        if isinstance(v, str):
            # Falco prints a list field as "(a,b)"
            s = v[1:-1] if v.startswith("(") and v.endswith(")") else v
            return s.split(",") if s else None
        return [json_text(v)]
    if isinstance(v, str):
        return v
    return json_text(v)


def json_pointer(doc: Any, pointer: str) -> Any:
    """The value at an RFC 6901 JSON pointer (``/a/b/0``, ``~1`` for ``/``, ``~0`` for ``~``); the
    whole document for ``""``; None if absent. The leading ``/`` is optional, as in the plugin."""
    if pointer.startswith("/"):
        pointer = pointer[1:]
    elif pointer == "":
        return doc
    v = doc
    for raw in pointer.split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(v, dict):
            if key not in v:
                return None
            v = v[key]
        elif isinstance(v, list):
            if not key.isdigit() or int(key) >= len(v):
                return None
            v = v[int(key)]
        else:
            return None
    return v


def _audit_object(e: dict[str, Any]) -> dict[str, Any]:
    """The audit event without values the engine cached in it (keys with a dot are field names;
    audit Event keys never have one)."""
    if any("." in k for k in e):
        return {k: v for k, v in e.items() if "." not in k}
    return e


# ---------------------------------------------------------------------------------------------
# getters: (audit event, arg) -> value | None
# ---------------------------------------------------------------------------------------------


def _keys(*keys: str) -> Getter:
    def get(e: dict[str, Any], _arg: str | None) -> Any:
        return _text(_dig(e, *keys))

    return get


def _list_keys(*keys: str) -> Getter:
    def get(e: dict[str, Any], arg: str | None) -> Any:
        return _texts(_select(_dig(e, *keys), arg))

    return get


def _uri_param(e: dict[str, Any], arg: str | None) -> Any:
    uri = e.get("requestURI")
    if not isinstance(uri, str) or arg is None:
        return None
    try:
        query = parse_qs(urlsplit(uri).query, keep_blank_values=True)
    except ValueError:
        return None
    vals = query.get(arg)
    return vals[0] if vals else None


def _target_pod_name(e: dict[str, Any], _arg: str | None) -> Any:
    ref = e.get("objectRef")
    if isinstance(ref, dict) and ref.get("resource") == "pods" and not ref.get("subresource"):
        return _text(_dig(e, "responseObject", "metadata", "name"))
    return None


def _subject_names(kind: str, namespaced: bool = False) -> Getter:
    def get(e: dict[str, Any], _arg: str | None) -> Any:
        subjects = _dig(e, "requestObject", "subjects")
        if not isinstance(subjects, list):
            return None
        out: list[str] = []
        for s in subjects:
            if not isinstance(s, dict) or s.get("kind") != kind or s.get("name") is None:
                continue
            name = json_text(s["name"])
            if namespaced:
                ns = s.get("namespace")
                if ns is None:
                    continue
                name = f"{json_text(ns)}:{name}"
            out.append(name)
        return out or None

    return get


def _always_true(_e: dict[str, Any], _arg: str | None) -> Any:
    # deprecated in the plugin; it answers "true" for every audit event
    return "true"


def _pod_spec(e: dict[str, Any]) -> Any:
    return _dig(e, "requestObject", "spec")


def _containers(e: dict[str, Any], which: str, arg: str | None) -> list[Any] | None:
    return _select(_dig(e, "requestObject", "spec", which), arg)


def image_repository(image: str) -> str:
    """The repository part of an image reference: no tag, no digest (a registry port is kept)."""
    return split_image(image)[0] or image


def _c_images(e: dict[str, Any], which: str, arg: str | None) -> list[str] | None:
    cs = _containers(e, which, arg)
    if not cs:
        return None
    out = []
    for c in cs:
        img = _dig(c, "image")
        if img is None:
            return None  # the plugin gives nothing when a container has no image
        out.append(json_text(img))
    return out


def _c_image(which: str) -> Getter:
    return lambda e, arg: _c_images(e, which, arg)


def _c_repository(which: str) -> Getter:
    def get(e: dict[str, Any], arg: str | None) -> Any:
        imgs = _c_images(e, which, arg)
        return [image_repository(i) for i in imgs] if imgs else None

    return get


def _c_names(which: str) -> Getter:
    def get(e: dict[str, Any], arg: str | None) -> Any:
        cs = _containers(e, which, arg)
        if not cs:
            return None
        names = [_dig(c, "name") for c in cs]
        if any(n is None for n in names):
            return None
        return [json_text(n) for n in names]

    return get


def _c_joined(which: str, key: str) -> Getter:
    """command / args: each container's array joined with spaces; containers without it skipped."""

    def get(e: dict[str, Any], arg: str | None) -> Any:
        cs = _containers(e, which, arg)
        if not cs:
            return None
        out = []
        for c in cs:
            v = _dig(c, key)
            if v is None:
                continue
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                return None
            out.append(" ".join(v))
        return out or None

    return get


def _c_values(which: str, *keys: str) -> Getter:
    """One value per container that has it (containers without it are skipped, as in the plugin)."""

    def get(e: dict[str, Any], arg: str | None) -> Any:
        cs = _containers(e, which, arg)
        if cs is None:
            return None
        out = [json_text(v) for c in cs if (v := _dig(c, *keys)) is not None]
        return out or None

    return get


def _c_effective(which: str, key: str) -> Getter:
    """runAsUser/runAsGroup each container starts with: its own, else the pod's, else 0."""

    def get(e: dict[str, Any], arg: str | None) -> Any:
        cs = _containers(e, which, arg)
        if not cs:
            return None
        pod = _dig(e, "requestObject", "spec", "securityContext", key)
        default = "0" if pod is None else json_text(pod)
        out = []
        for c in cs:
            v = _dig(c, "securityContext", key)
            out.append(default if v is None else json_text(v))
        return out

    return get


def _c_capabilities(which: str) -> Getter:
    def get(e: dict[str, Any], arg: str | None) -> Any:
        cs = _containers(e, which, arg)
        if cs is None:
            return None
        out: list[str] = []
        for c in cs:
            add = _dig(c, "securityContext", "capabilities", "add")
            if isinstance(add, list):
                out.extend(json_text(x) for x in add if x is not None)
            elif add is not None:
                out.append(json_text(add))
        return out or None

    return get


def _c_host_ports(which: str) -> Getter:
    """hostPort of every container port; containerPort where no hostPort is given (with
    hostNetwork they are the same port)."""

    def get(e: dict[str, Any], arg: str | None) -> Any:
        cs = _containers(e, which, arg)
        if cs is None:
            return None
        out: list[str] = []
        for c in cs:
            ports = _dig(c, "ports")
            if not isinstance(ports, list):
                continue
            for p in ports:
                if not isinstance(p, dict):
                    continue
                v = p.get("hostPort")
                if v is None:
                    v = p.get("containerPort")
                if v is not None:
                    out.append(json_text(v))
        return out or None

    return get


def _any_privileged(e: dict[str, Any], _arg: str | None) -> Any:
    cs = _containers(e, "containers", None)
    if cs is None:
        return None
    return "true" if any(_dig(c, "securityContext", "privileged") is True for c in cs) else "false"


def _first(getter: Getter) -> Getter:
    def get(e: dict[str, Any], _arg: str | None) -> Any:
        v = getter(e, "0")
        return v[0] if v else None

    return get


def _rules_values(key: str) -> Getter:
    """Values of `key` over the role's rules (flattened); the index argument selects a rule."""

    def get(e: dict[str, Any], arg: str | None) -> Any:
        rules = _select(_dig(e, "requestObject", "rules"), arg)
        if rules is None:
            return None
        out: list[str] = []
        for r in rules:
            v = _dig(r, key)
            if isinstance(v, list):
                out.extend(json_text(x) for x in v if x is not None)
        return out or None

    return get


def _volumes(e: dict[str, Any], arg: str | None) -> list[Any] | None:
    return _select(_dig(e, "requestObject", "spec", "volumes"), arg)


def _volume_values(*keys: str) -> Getter:
    def get(e: dict[str, Any], arg: str | None) -> Any:
        vols = _volumes(e, arg)
        if vols is None:
            return None
        out = [json_text(v) for vol in vols if (v := _dig(vol, *keys)) is not None]
        return out or None

    return get


def _volume_types(e: dict[str, Any], arg: str | None) -> Any:
    vols = _volumes(e, arg)
    if vols is None:
        return None
    out = [k for vol in vols if isinstance(vol, dict) for k in vol if k != "name"]
    return out or None


def _volume_hostpath(e: dict[str, Any], arg: str | None) -> Any:
    """ "true" if a hostPath volume has path `arg` (or starts with it, if `arg` ends with `*`)."""
    vols = _dig(e, "requestObject", "spec", "volumes")
    if not isinstance(vols, list) or arg is None:
        return None
    prefix = arg[:-1] if arg.endswith("*") else None
    for vol in vols:
        p = _dig(vol, "hostPath", "path")
        if not isinstance(p, str):
            continue
        if p == arg or (prefix is not None and p.startswith(prefix)):
            return "true"
    return "false"


def _service_ports(e: dict[str, Any], arg: str | None) -> Any:
    return _texts(_select(_dig(e, "requestObject", "spec", "ports"), arg))


# --- jevt.* / json.* --------------------------------------------------------------------------


def _jevt_value(e: dict[str, Any], arg: str | None) -> Any:
    if arg is None:
        return None
    return _text(json_pointer(_audit_object(e), arg))


def _jevt_obj(e: dict[str, Any], _arg: str | None) -> Any:
    return orjson.dumps(_audit_object(e), option=orjson.OPT_INDENT_2).decode()


def _rawtime(e: dict[str, Any], _arg: str | None) -> Any:
    ns = event_time_ns(e, K8S_AUDIT)
    return None if ns is None else str(ns)


def _clock_time(e: dict[str, Any], _arg: str | None) -> Any:
    ns = event_time_ns(e, K8S_AUDIT)
    if ns is None:
        return None
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}"


def _iso_time(e: dict[str, Any], _arg: str | None) -> Any:
    ns = event_time_ns(e, K8S_AUDIT)
    return None if ns is None else format_time_ns(ns)


# ---------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------


def _factory(name: str, getter: Getter, is_list: bool) -> Callable[[str | None], Extractor]:
    def make(arg: str | None) -> Extractor:
        flat_key = name if arg is None else f"{name}[{arg}]"

        def get(e: dict[str, Any]) -> Any:
            v = e.get(flat_key)
            if v is not None:
                return _flat(v, is_list)
            return getter(e, arg)

        get.__name__ = f"get_{name.replace('.', '_')}"
        return get

    return make


def _reg(
    name: str,
    getter: Getter,
    description: str,
    *,
    is_list: bool = False,
    arg: ArgKind = ArgKind.NONE,
    arg_required: bool = False,
) -> None:
    register(
        FieldSpec(
            name,
            FieldType.STRING,
            K8S_AUDIT,
            arg,
            arg_required,
            is_list,
            description,
            make_extractor=_factory(name, getter, is_list),
        )
    )


def _indexed_list(name: str, getter: Getter, description: str) -> None:
    """A list field with an optional index argument selecting one item."""
    _reg(name, getter, description, is_list=True, arg=ArgKind.INDEX)


_ANNOTATIONS = {
    "ka.auth.decision": ("authorization.k8s.io/decision", "The authorization decision (allow, forbid)"),
    "ka.auth.reason": ("authorization.k8s.io/reason", "The reason of the authorization decision"),
    "ka.auth.openshift.decision": (
        "authentication.openshift.io/decision",
        "The decision of OpenShift's authentication extension (OpenShift clusters only)",
    ),
    "ka.auth.openshift.username": (
        "authentication.openshift.io/username",
        "The user name OpenShift's authentication extension saw (OpenShift clusters only)",
    ),
    "ka.validations.admission.policy.failure": (
        "validation.policy.admission.k8s.io/validation_failure",
        "Why a ValidatingAdmissionPolicy rejected the request",
    ),
    "ka.security.pod.violations": (
        "pod-security.kubernetes.io/audit-violations",
        "The Pod Security admission violations of the request",
    ),
    "ka.cluster.name": ("cluster_name", "The name of the cluster (the cluster_name annotation)"),
}


def _container_fields(which: str, label: str, with_host_port: bool) -> None:
    p = f"ka.req.pod.{which}."
    _indexed_list(p + "name", _c_names(which), f"The names of the pod's {label}")
    _indexed_list(p + "image", _c_image(which), f"The images of the pod's {label}")
    _indexed_list(
        p + "image.repository",
        _c_repository(which),
        f"The images of the pod's {label}, repository part only (e.g. falcosecurity/falco)",
    )
    _indexed_list(p + "command", _c_joined(which, "command"), f"The command of each of the pod's {label}")
    _indexed_list(p + "args", _c_joined(which, "args"), f"The args of each of the pod's {label}")
    for field, key, what in (
        ("privileged", "privileged", "privileged flag"),
        ("allow_privilege_escalation", "allowPrivilegeEscalation", "allowPrivilegeEscalation flag"),
        ("read_only_fs", "readOnlyRootFilesystem", "readOnlyRootFilesystem flag"),
        ("run_as_user", "runAsUser", "runAsUser uid"),
        ("run_as_group", "runAsGroup", "runAsGroup gid"),
        ("proc_mount", "procMount", "procMount type"),
    ):
        _indexed_list(
            p + field,
            _c_values(which, "securityContext", key),
            f"The {what} of the pod's {label} (those that set it)",
        )
    _indexed_list(
        p + "eff_run_as_user",
        _c_effective(which, "runAsUser"),
        f"The uid each of the pod's {label} starts with (container, else pod security context, else 0)",
    )
    _indexed_list(
        p + "eff_run_as_group",
        _c_effective(which, "runAsGroup"),
        f"The gid each of the pod's {label} starts with (container, else pod security context, else 0)",
    )
    _indexed_list(
        p + "add_capabilities", _c_capabilities(which), f"The capabilities added to the pod's {label}"
    )
    if with_host_port:
        _indexed_list(
            p + "host_port",
            _c_host_ports(which),
            f"The hostPort of every port of the pod's {label} (containerPort if none)",
        )


def register_k8s_audit_fields() -> None:
    """Register every k8s_audit field with the catalogue (:mod:`stockade.model.fields` does, once)."""
    _reg("ka.auditid", _keys("auditID"), "The unique id of the audit event")
    _reg("ka.stage", _keys("stage"), "The stage of the request (RequestReceived, ResponseComplete, ...)")
    for name, (ann, desc) in _ANNOTATIONS.items():
        _reg(name, _keys("annotations", ann), desc)
    _reg("ka.user.name", _keys("user", "username"), "The user name performing the request")
    _reg("ka.user.groups", _list_keys("user", "groups"), "The groups of the user", is_list=True)
    _reg("ka.impuser.name", _keys("impersonatedUser", "username"), "The impersonated user name")
    _reg("ka.verb", _keys("verb"), "The action being performed (get, list, create, ...)")
    _reg("ka.uri", _keys("requestURI"), "The request URI as the client sent it")
    _reg(
        "ka.uri.param",
        _uri_param,
        "The value of a query parameter of the URI (ka.uri.param[command] of /x?command=ls is ls)",
        arg=ArgKind.KEY,
        arg_required=True,
    )
    _reg("ka.target.name", _keys("objectRef", "name"), "The target object's name")
    _reg("ka.target.namespace", _keys("objectRef", "namespace"), "The target object's namespace")
    _reg("ka.target.resource", _keys("objectRef", "resource"), "The target object's resource")
    _reg("ka.target.subresource", _keys("objectRef", "subresource"), "The target object's subresource")
    _reg("ka.target.pod.name", _target_pod_name, "The name of the target pod (requests on pods)")
    _reg(
        "ka.req.binding.subjects",
        _list_keys("requestObject", "subjects"),
        "The subjects a (cluster) role binding links, each as compact JSON",
        is_list=True,
    )
    for suffix, kind, ns, what in (
        ("user_names", "User", False, "user names"),
        ("serviceaccount_names", "ServiceAccount", False, "service account names"),
        ("serviceaccount_ns_names", "ServiceAccount", True, "service accounts as namespace:name"),
        ("group_names", "Group", False, "group names"),
    ):
        _reg(
            f"ka.req.binding.subjects.{suffix}",
            _subject_names(kind, ns),
            f"The subject {what} a (cluster) role binding links",
            is_list=True,
        )
    _reg(
        "ka.req.binding.role",
        _keys("requestObject", "roleRef", "name"),
        "The role a (cluster) role binding links",
    )
    _reg(
        "ka.req.binding.subject.has_name",
        _always_true,
        'Deprecated: "true" for every event (kept for old rules)',
        arg=ArgKind.KEY,
        arg_required=True,
    )
    _reg("ka.req.configmap.name", _keys("objectRef", "name"), "The name of the configmap of the request")
    _reg(
        "ka.req.configmap.obj",
        _keys("requestObject", "data"),
        "The data of the configmap of the request, as compact JSON",
    )
    _container_fields("containers", "containers", True)
    _container_fields("initContainers", "init containers", True)
    _container_fields("ephemeralContainers", "ephemeral containers", False)
    _reg(
        "ka.req.container.image",
        _first(_c_image("containers")),
        "Deprecated by ka.req.pod.containers.image: the image of the first container",
    )
    _reg(
        "ka.req.container.image.repository",
        _first(_c_repository("containers")),
        "Deprecated by ka.req.pod.containers.image.repository: the first container's repository",
    )
    _reg(
        "ka.req.container.privileged",
        _any_privileged,
        'Deprecated by ka.req.pod.containers.privileged: "true" if any container is privileged',
    )
    _reg("ka.req.pod.host_ipc", _keys("requestObject", "spec", "hostIPC"), "The pod's hostIPC flag")
    _reg(
        "ka.req.pod.host_network", _keys("requestObject", "spec", "hostNetwork"), "The pod's hostNetwork flag"
    )
    _reg(
        "ka.req.container.host_network",
        _keys("requestObject", "spec", "hostNetwork"),
        "Deprecated alias of ka.req.pod.host_network",
    )
    _reg("ka.req.pod.host_pid", _keys("requestObject", "spec", "hostPID"), "The pod's hostPID flag")
    sc = ("requestObject", "spec", "securityContext")
    _reg("ka.req.pod.run_as_user", _keys(*sc, "runAsUser"), "The runAsUser of the pod's security context")
    _reg("ka.req.pod.run_as_group", _keys(*sc, "runAsGroup"), "The runAsGroup of the pod's security context")
    _reg("ka.req.pod.fs_group", _keys(*sc, "fsGroup"), "The fsGroup of the pod's security context")
    _reg(
        "ka.req.pod.supplemental_groups",
        _list_keys(*sc, "supplementalGroups"),
        "The supplementalGroups of the pod's security context",
        is_list=True,
    )
    _reg(
        "ka.req.role.rules",
        _list_keys("requestObject", "rules"),
        "The rules of a (cluster) role, each as compact JSON",
        is_list=True,
    )
    for key in ("apiGroups", "nonResourceURLs", "verbs", "resources"):
        _indexed_list(
            f"ka.req.role.rules.{key}", _rules_values(key), f"The {key} of the (cluster) role's rules"
        )
    _reg("ka.req.service.type", _keys("requestObject", "spec", "type"), "The type of the service")
    _indexed_list("ka.req.service.ports", _service_ports, "The ports of the service, each as compact JSON")
    _indexed_list(
        "ka.req.pod.volumes.hostpath",
        _volume_values("hostPath", "path"),
        "The paths of the pod's hostPath volumes",
    )
    _reg(
        "ka.req.volume.hostpath",
        _volume_hostpath,
        'Deprecated by ka.req.pod.volumes.hostpath: "true" if a hostPath volume has this path '
        "(a trailing * matches a prefix)",
        arg=ArgKind.KEY,
        arg_required=True,
    )
    _indexed_list(
        "ka.req.pod.volumes.flexvolume_driver",
        _volume_values("flexVolume", "driver"),
        "The drivers of the pod's flexVolume volumes",
    )
    _indexed_list("ka.req.pod.volumes.volume_type", _volume_types, "The type of each of the pod's volumes")
    _reg("ka.resp.name", _keys("responseObject", "metadata", "name"), "The name of the response object")
    _reg("ka.response.code", _keys("responseStatus", "code"), "The response code (200, 403, ...)")
    _reg("ka.response.reason", _keys("responseStatus", "reason"), "The response reason (usually on failures)")
    _reg("ka.useragent", _keys("userAgent"), "The user agent of the client")
    _indexed_list("ka.sourceips", _list_keys("sourceIPs"), "The IP addresses of the client")

    for prefix in ("jevt", "json"):
        _reg(
            f"{prefix}.value",
            _jevt_value,
            f"The value at a JSON pointer in the audit event ({prefix}.value[/objectRef/name])",
            arg=ArgKind.KEY,
            arg_required=True,
        )
        _reg(f"{prefix}.obj", _jevt_obj, "The whole audit event as indented JSON")
        _reg(f"{prefix}.rawtime", _rawtime, "The event time (stageTimestamp) in ns since the epoch")
    _reg("jevt.time", _clock_time, "The event time as HH:MM:SS.nnnnnnnnn (UTC)")
    _reg("jevt.time.iso8601", _iso_time, "The event time in ISO 8601 with ns (UTC)")
