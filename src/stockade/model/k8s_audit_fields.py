"""Kubernetes audit fields (`ka.*`, `jevt.*`), as Falco's k8saudit and json plugins extract them.

The event data is an audit.k8s.io Event object (v1 or v1beta1) as the API server wrote it. A flat
dict that already holds a `ka.*` key (a Falco alert's output fields, replayed) is read as is. Every
value is a string or a list of strings, as the plugin gives them: numbers and booleans become their
JSON text (`"403"`, `"true"`), objects and arrays their JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from stockade.model.fields import ArgKind, Extractor, FieldSpec, FieldType, register
from stockade.model.timeutil import format_time_ns, parse_time_ns

SOURCE = "k8s_audit"
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def as_text(v: Any) -> str:
    """The plugin's jsonValueAsString: strings as they are, anything else as its JSON."""
    if isinstance(v, str):
        return v
    return orjson.dumps(v).decode()


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
        if d is None:
            return None
    return d


def _values(d: Any, index: int | None, keys: tuple[str, ...]) -> list[Any] | None:
    """The plugin's getValuesRecursive: walk keys; at an array, fan out (or take [index]).
    Missing leaves inside a fan-out are None entries; a missing path outside one is None."""
    for i, k in enumerate(keys):
        if isinstance(d, list):
            if index is None:
                out: list[Any] = []
                for item in d:
                    sub = _values(item, index, keys[i:])
                    out.extend(sub if sub is not None else [None])
                return out
            if index >= len(d):
                return None
            d = d[index]
        if not isinstance(d, dict):
            return None
        d = d.get(k) if k else d
        if d is None:
            return None
    return [d]


def _texts(vals: list[Any] | None, default: str | None = None) -> list[str] | None:
    if vals is None:
        return None
    out = []
    for v in vals:
        if v is None:
            if default is not None:
                out.append(default)
            continue
        out.append(as_text(v))
    return out


def _flat_or(name: str, fn: Callable[[dict[str, Any], str | None], Any]) -> Callable[[str | None], Extractor]:
    def make(arg: str | None) -> Extractor:
        flat = name if arg is None else f"{name}[{arg}]"

        def get(e: dict[str, Any]) -> Any:
            v = e.get(flat)
            if v is not None:
                return v
            if "auditID" not in e:
                return None
            return fn(e, arg)

        return get

    return make


def _keys(*keys: str, is_list: bool = False) -> Callable[[dict[str, Any], str | None], Any]:
    def fn(e: dict[str, Any], arg: str | None) -> Any:
        v = _get(e, *keys)
        if v is None:
            return None
        if is_list:
            return [as_text(x) for x in v] if isinstance(v, list) else None
        return as_text(v)

    return fn


def _index(arg: str | None) -> int | None:
    return int(arg) if arg is not None and arg.isdigit() else None


def _container(
    lst: str, *sub: str, default_pod: str | None = None, flatten: bool = False
) -> Callable[[dict[str, Any], str | None], Any]:
    def fn(e: dict[str, Any], arg: str | None) -> Any:
        vals = _values(e, _index(arg), ("requestObject", "spec", lst, *sub))
        if flatten and vals is not None:
            # one list per container (capabilities.add): the values themselves
            vals = [x for v in vals for x in (v if isinstance(v, list) else [v])]
        if default_pod is not None:
            pod = _get(e, "requestObject", "spec", "securityContext", default_pod)
            if pod is None:
                pod = _get(e, "requestObject", "spec", default_pod)
            return _texts(vals, as_text(pod) if pod is not None else "0")
        return _texts(vals)

    return fn


def _images(lst: str) -> Callable[[dict[str, Any], str | None], Any]:
    return _container(lst, "image")


def _repo(image: str) -> str:
    return image.split(":", 1)[0].split("@", 1)[0]


def _repos(lst: str) -> Callable[[dict[str, Any], str | None], Any]:
    def fn(e: dict[str, Any], arg: str | None) -> Any:
        imgs = _images(lst)(e, arg)
        return [_repo(i) for i in imgs] if imgs else imgs

    return fn


def _joined(lst: str, what: str) -> Callable[[dict[str, Any], str | None], Any]:
    """containers' command / args: each container's list joined with spaces."""

    def fn(e: dict[str, Any], arg: str | None) -> Any:
        vals = _values(e, _index(arg), ("requestObject", "spec", lst, what))
        if vals is None:
            return None
        out = [" ".join(as_text(x) for x in v) for v in vals if isinstance(v, list)]
        return out or None

    return fn


def _host_ports(lst: str) -> Callable[[dict[str, Any], str | None], Any]:
    def fn(e: dict[str, Any], arg: str | None) -> Any:
        vals = _values(e, _index(arg), ("requestObject", "spec", lst, "ports"))
        if vals is None:
            return None
        out = []
        for ports in vals:
            for p in ports if isinstance(ports, list) else []:
                if isinstance(p, dict):
                    v = p.get("hostPort", p.get("containerPort"))
                    if v is not None:
                        out.append(as_text(v))
        return out

    return fn


def _subjects(kind: str) -> Callable[[dict[str, Any], str | None], Any]:
    def fn(e: dict[str, Any], arg: str | None) -> Any:
        subs = _get(e, "requestObject", "subjects")
        if not isinstance(subs, list):
            return [] if subs is None else None
        want = "ServiceAccount" if kind == "NamespacedServiceAccount" else kind
        out = []
        for s in subs:
            if isinstance(s, dict) and s.get("kind") == want and s.get("name") is not None:
                name = as_text(s["name"])
                if kind == "NamespacedServiceAccount":
                    if s.get("namespace") is None:
                        continue
                    name = f"{as_text(s['namespace'])}:{name}"
                out.append(name)
        return out

    return fn


def _rules_field(what: str) -> Callable[[dict[str, Any], str | None], Any]:
    def fn(e: dict[str, Any], arg: str | None) -> Any:
        vals = _values(e, _index(arg), ("requestObject", "rules", what))
        if vals is None:
            return None
        out: list[str] = []
        for v in vals:
            if isinstance(v, list):
                out.extend(as_text(x) for x in v if x is not None)
        return out

    return fn


def _uri_param(e: dict[str, Any], arg: str | None) -> Any:
    uri = e.get("requestURI")
    if not isinstance(uri, str) or arg is None:
        return None
    vals = parse_qs(urlsplit(uri).query, keep_blank_values=True).get(arg)
    return vals[0] if vals else None


def _target_pod_name(e: dict[str, Any], arg: str | None) -> Any:
    if _get(e, "objectRef", "resource") == "pods" and not _get(e, "objectRef", "subresource"):
        v = _get(e, "responseObject", "metadata", "name")
        return as_text(v) if v is not None else None
    return None


def _container_privileged(e: dict[str, Any], arg: str | None) -> Any:
    vals = _values(e, None, ("requestObject", "spec", "containers", "securityContext", "privileged"))
    if vals is None:
        return None
    return "true" if any(v is True for v in vals) else "false"


def _first(fn: Callable[[dict[str, Any], str | None], Any]) -> Callable[[dict[str, Any], str | None], Any]:
    def get(e: dict[str, Any], arg: str | None) -> Any:
        v = fn(e, "0")
        return v[0] if v else None

    return get


def _volume_hostpath(e: dict[str, Any], arg: str | None) -> Any:
    vals = _texts(_values(e, None, ("requestObject", "spec", "volumes", "hostPath", "path"))) or []
    if arg is None:
        return None
    prefix = arg[:-1] if arg.endswith("*") else None
    for v in vals:
        if (prefix is not None and v.startswith(prefix)) or v == arg:
            return "true"
    return "false"


def _volume_types(e: dict[str, Any], arg: str | None) -> Any:
    vals = _values(e, _index(arg), ("requestObject", "spec", "volumes", ""))
    if vals is None:
        return None
    out = []
    for v in vals:
        if isinstance(v, dict):
            out.extend(k for k in v if k != "name")
    return out


def _jevt_value(e: dict[str, Any], arg: str | None) -> Any:
    if not arg:
        return as_text(e)
    d: Any = e
    for key in arg.lstrip("/").split("/"):
        key = key.replace("~1", "/").replace("~0", "~")
        if isinstance(d, dict):
            d = d.get(key)
        elif isinstance(d, list) and key.isdigit() and int(key) < len(d):
            d = d[int(key)]
        else:
            return None
        if d is None:
            return None
    return as_text(d)


def audit_time_ns(e: dict[str, Any]) -> int | None:
    for k in ("stageTimestamp", "requestReceivedTimestamp", "timestamp"):
        v = e.get(k)
        if isinstance(v, str):
            t = parse_time_ns(v)
            if t is not None:
                return t
    return None


def _jevt_time(iso: bool) -> Callable[[dict[str, Any], str | None], Any]:
    def fn(e: dict[str, Any], arg: str | None) -> Any:
        t = audit_time_ns(e)
        if t is None:
            return None
        return format_time_ns(t) if iso else format_time_ns(t)[11:29]

    return fn


def _jevt_rawtime(e: dict[str, Any], arg: str | None) -> Any:
    t = audit_time_ns(e)
    return str(t) if t is not None else None


S, L = False, True
#: name -> (extractor, is list, argument kind, argument required)
_FIELDS: dict[str, tuple[Callable[[dict[str, Any], str | None], Any], bool, ArgKind, bool]] = {
    "ka.auditid": (_keys("auditID"), S, ArgKind.NONE, False),
    "ka.stage": (_keys("stage"), S, ArgKind.NONE, False),
    "ka.auth.decision": (_keys("annotations", "authorization.k8s.io/decision"), S, ArgKind.NONE, False),
    "ka.auth.reason": (_keys("annotations", "authorization.k8s.io/reason"), S, ArgKind.NONE, False),
    "ka.auth.openshift.decision": (
        _keys("annotations", "authentication.openshift.io/decision"),
        S,
        ArgKind.NONE,
        False,
    ),
    "ka.auth.openshift.username": (
        _keys("annotations", "authentication.openshift.io/username"),
        S,
        ArgKind.NONE,
        False,
    ),
    "ka.validations.admission.policy.failure": (
        _keys("annotations", "validation.policy.admission.k8s.io/validation_failure"),
        S,
        ArgKind.NONE,
        False,
    ),
    "ka.security.pod.violations": (
        _keys("annotations", "pod-security.kubernetes.io/audit-violations"),
        S,
        ArgKind.NONE,
        False,
    ),
    "ka.user.name": (_keys("user", "username"), S, ArgKind.NONE, False),
    "ka.user.groups": (_keys("user", "groups", is_list=True), L, ArgKind.NONE, False),
    "ka.impuser.name": (_keys("impersonatedUser", "username"), S, ArgKind.NONE, False),
    "ka.verb": (_keys("verb"), S, ArgKind.NONE, False),
    "ka.uri": (_keys("requestURI"), S, ArgKind.NONE, False),
    "ka.uri.param": (_uri_param, S, ArgKind.KEY, True),
    "ka.target.name": (_keys("objectRef", "name"), S, ArgKind.NONE, False),
    "ka.target.namespace": (_keys("objectRef", "namespace"), S, ArgKind.NONE, False),
    "ka.target.resource": (_keys("objectRef", "resource"), S, ArgKind.NONE, False),
    "ka.target.subresource": (_keys("objectRef", "subresource"), S, ArgKind.NONE, False),
    "ka.target.pod.name": (_target_pod_name, S, ArgKind.NONE, False),
    "ka.req.binding.subjects": (_keys("requestObject", "subjects", is_list=True), L, ArgKind.NONE, False),
    "ka.req.binding.subjects.user_names": (_subjects("User"), L, ArgKind.NONE, False),
    "ka.req.binding.subjects.serviceaccount_names": (_subjects("ServiceAccount"), L, ArgKind.NONE, False),
    "ka.req.binding.subjects.serviceaccount_ns_names": (
        _subjects("NamespacedServiceAccount"),
        L,
        ArgKind.NONE,
        False,
    ),
    "ka.req.binding.subjects.group_names": (_subjects("Group"), L, ArgKind.NONE, False),
    "ka.req.binding.role": (_keys("requestObject", "roleRef", "name"), S, ArgKind.NONE, False),
    "ka.req.binding.subject.has_name": (lambda e, a: "true", S, ArgKind.KEY, True),
    "ka.req.configmap.name": (_keys("objectRef", "name"), S, ArgKind.NONE, False),
    "ka.req.configmap.obj": (_keys("requestObject", "data"), S, ArgKind.NONE, False),
    "ka.req.container.image": (_first(_images("containers")), S, ArgKind.NONE, False),
    "ka.req.container.image.repository": (_first(_repos("containers")), S, ArgKind.NONE, False),
    "ka.req.pod.host_ipc": (_keys("requestObject", "spec", "hostIPC"), S, ArgKind.NONE, False),
    "ka.req.pod.host_network": (_keys("requestObject", "spec", "hostNetwork"), S, ArgKind.NONE, False),
    "ka.req.container.host_network": (_keys("requestObject", "spec", "hostNetwork"), S, ArgKind.NONE, False),
    "ka.req.pod.host_pid": (_keys("requestObject", "spec", "hostPID"), S, ArgKind.NONE, False),
    "ka.req.container.privileged": (_container_privileged, S, ArgKind.NONE, False),
    "ka.req.pod.run_as_user": (
        _keys("requestObject", "spec", "securityContext", "runAsUser"),
        S,
        ArgKind.NONE,
        False,
    ),
    "ka.req.pod.run_as_group": (
        _keys("requestObject", "spec", "securityContext", "runAsGroup"),
        S,
        ArgKind.NONE,
        False,
    ),
    "ka.req.role.rules": (_keys("requestObject", "rules", is_list=True), L, ArgKind.NONE, False),
    "ka.req.role.rules.apiGroups": (_rules_field("apiGroups"), L, ArgKind.INDEX, False),
    "ka.req.role.rules.nonResourceURLs": (_rules_field("nonResourceURLs"), L, ArgKind.INDEX, False),
    "ka.req.role.rules.verbs": (_rules_field("verbs"), L, ArgKind.INDEX, False),
    "ka.req.role.rules.resources": (_rules_field("resources"), L, ArgKind.INDEX, False),
    "ka.req.pod.fs_group": (
        _keys("requestObject", "spec", "securityContext", "fsGroup"),
        S,
        ArgKind.NONE,
        False,
    ),
    "ka.req.pod.supplemental_groups": (
        _keys("requestObject", "spec", "securityContext", "supplementalGroups", is_list=True),
        L,
        ArgKind.NONE,
        False,
    ),
    "ka.req.service.type": (_keys("requestObject", "spec", "type"), S, ArgKind.NONE, False),
    "ka.req.service.ports": (
        lambda e, a: _texts(_values(e, _index(a), ("requestObject", "spec", "ports"))),
        L,
        ArgKind.INDEX,
        False,
    ),
    "ka.req.volume.hostpath": (_volume_hostpath, S, ArgKind.KEY, True),
    "ka.req.pod.volumes.hostpath": (
        lambda e, a: _texts(_values(e, _index(a), ("requestObject", "spec", "volumes", "hostPath", "path"))),
        L,
        ArgKind.INDEX,
        False,
    ),
    "ka.req.pod.volumes.flexvolume_driver": (
        lambda e, a: _texts(
            _values(e, _index(a), ("requestObject", "spec", "volumes", "flexVolume", "driver"))
        ),
        L,
        ArgKind.INDEX,
        False,
    ),
    "ka.req.pod.volumes.volume_type": (_volume_types, L, ArgKind.INDEX, False),
    "ka.resp.name": (_keys("responseObject", "metadata", "name"), S, ArgKind.NONE, False),
    "ka.response.code": (_keys("responseStatus", "code"), S, ArgKind.NONE, False),
    "ka.response.reason": (_keys("responseStatus", "reason"), S, ArgKind.NONE, False),
    "ka.useragent": (_keys("userAgent"), S, ArgKind.NONE, False),
    "ka.sourceips": (_keys("sourceIPs", is_list=True), L, ArgKind.INDEX, False),
    "ka.cluster.name": (_keys("annotations", "cluster_name"), S, ArgKind.NONE, False),
    "jevt.value": (_jevt_value, S, ArgKind.KEY, False),
    "jevt.obj": (lambda e, a: orjson.dumps(e, option=orjson.OPT_INDENT_2).decode(), S, ArgKind.NONE, False),
    "jevt.time": (_jevt_time(False), S, ArgKind.NONE, False),
    "jevt.time.iso8601": (_jevt_time(True), S, ArgKind.NONE, False),
    "jevt.rawtime": (_jevt_rawtime, S, ArgKind.NONE, False),
}

for _lst in _CONTAINER_LISTS:
    _p = f"ka.req.pod.{_lst}."
    _FIELDS[_p + "args"] = (_joined(_lst, "args"), L, ArgKind.INDEX, False)
    _FIELDS[_p + "command"] = (_joined(_lst, "command"), L, ArgKind.INDEX, False)
    _FIELDS[_p + "name"] = (_container(_lst, "name"), L, ArgKind.INDEX, False)
    _FIELDS[_p + "image"] = (_images(_lst), L, ArgKind.INDEX, False)
    _FIELDS[_p + "image.repository"] = (_repos(_lst), L, ArgKind.INDEX, False)
    if _lst != "ephemeralContainers":
        _FIELDS[_p + "host_port"] = (_host_ports(_lst), L, ArgKind.INDEX, False)
    for _name, _key in (
        ("privileged", "privileged"),
        ("allow_privilege_escalation", "allowPrivilegeEscalation"),
        ("read_only_fs", "readOnlyRootFilesystem"),
        ("run_as_user", "runAsUser"),
        ("run_as_group", "runAsGroup"),
        ("proc_mount", "procMount"),
    ):
        _FIELDS[_p + _name] = (_container(_lst, "securityContext", _key), L, ArgKind.INDEX, False)
    _FIELDS[_p + "add_capabilities"] = (
        _container(_lst, "securityContext", "capabilities", "add", flatten=True),
        L,
        ArgKind.INDEX,
        False,
    )
    _FIELDS[_p + "eff_run_as_user"] = (
        _container(_lst, "securityContext", "runAsUser", default_pod="runAsUser"),
        L,
        ArgKind.INDEX,
        False,
    )
    _FIELDS[_p + "eff_run_as_group"] = (
        _container(_lst, "securityContext", "runAsGroup", default_pod="runAsGroup"),
        L,
        ArgKind.INDEX,
        False,
    )


def _register() -> None:
    for name, (fn, is_list, arg, required) in _FIELDS.items():
        register(
            FieldSpec(
                name, FieldType.STRING, SOURCE, arg, required, is_list, make_extractor=_flat_or(name, fn)
            )
        )


_register()
