"""The objects of a live cluster, read through the official `kubernetes` client and the user's
kubeconfig (``--kubeconfig``, else ``KUBECONFIG``, else ``~/.kube/config``; ``--context``, else
its current context).

Listed (raw JSON, paged with ``limit``/``continue``): the workload kinds, the RBAC kinds,
NetworkPolicies, ServiceAccounts, Services and Namespaces (:data:`RESOURCES`); never Secrets or
ConfigMaps. The items of a list lack ``kind``/``apiVersion``: they get the list's (the loader's
rule). Objects a controller owns (a Deployment's ReplicaSets, their Pods, a CronJob's Jobs) are left
out: their template is checked in the owner, once. Each object's file is ``cluster:<context>``.

An unreachable API server, refused credentials (401), or a broken kubeconfig is a
:class:`~stockade.errors.SourceError` (nothing could be read); a kind the user may not list
(403) or that the server does not serve (404) is a problem of the scan, which goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from stockade.errors import Location, SourceError
from stockade.k8s.load import Loaded, LoadError, objects_of

__all__ = ["RESOURCES", "Resource", "load_cluster"]


@dataclass(frozen=True, slots=True)
class Resource:
    """A kind to list: its group/version, plural, and whether it lives in namespaces."""

    group_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None) -> str:
        """The API path of the list (in `namespace` when given and the kind is namespaced)."""
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


RESOURCES: Final = (
    Resource("v1", "namespaces", namespaced=False),
    Resource("v1", "pods"),
    Resource("v1", "podtemplates"),
    Resource("v1", "replicationcontrollers"),
    Resource("v1", "serviceaccounts"),
    Resource("v1", "services"),
    Resource("apps/v1", "deployments"),
    Resource("apps/v1", "statefulsets"),
    Resource("apps/v1", "daemonsets"),
    Resource("apps/v1", "replicasets"),
    Resource("batch/v1", "jobs"),
    Resource("batch/v1", "cronjobs"),
    Resource("networking.k8s.io/v1", "networkpolicies"),
    Resource("rbac.authorization.k8s.io/v1", "roles"),
    Resource("rbac.authorization.k8s.io/v1", "rolebindings"),
    Resource("rbac.authorization.k8s.io/v1", "clusterroles", namespaced=False),
    Resource("rbac.authorization.k8s.io/v1", "clusterrolebindings", namespaced=False),
)

#: owner kinds whose owned objects are not listed again (their template is checked in the owner)
_OWNERS: Final = frozenset(("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"))
_TIMEOUT: Final = (5.0, 60.0)  # connect, read (seconds)
_PAGE: Final = 500


def _owned(item: Any) -> bool:
    meta = item.get("metadata") if isinstance(item, dict) else None
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    return isinstance(owners, list) and any(
        isinstance(o, dict) and o.get("controller") and o.get("kind") in _OWNERS for o in owners
    )


def _client(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        name = context or (current or {}).get("name", "")
        if context and not any(c.get("name") == context for c in contexts or ()):
            raise SourceError(f"kubeconfig has no context {context!r}", Location(kubeconfig or "kubeconfig"))
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except ConfigException as e:
        raise SourceError(f"kubeconfig: {e}", Location(kubeconfig or "kubeconfig")) from None
    except OSError as e:
        raise SourceError(f"kubeconfig: {e.strerror or e}", Location(kubeconfig or "kubeconfig")) from None
    configuration.retries = 0
    return client.ApiClient(configuration), name


class _Refused(Exception):
    """The API server answered a list with an error status (its Status message as text)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def _get(api: Any, path: str, query: list[tuple[str, Any]]) -> Any:
    """One GET of the API, its JSON answer (raises _Refused on an error status)."""
    method, url, headers, _body, _post = api.param_serialize(
        "GET",
        path,
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(method, url, header_params=headers, _request_timeout=_TIMEOUT)
    data = resp.read()
    if not 200 <= resp.status <= 299:
        text = f"{resp.status} {resp.reason or ''}".strip()
        try:
            message = orjson.loads(data or b"{}").get("message")
        except (orjson.JSONDecodeError, AttributeError):
            message = None
        raise _Refused(resp.status, f"{text}: {message}" if message else text)
    return orjson.loads(data)


def _list(api: Any, path: str) -> list[Any]:
    """Every page of one list: the items, kind and apiVersion restored, owned objects left out."""
    out: list[Any] = []
    token = ""
    while True:
        query: list[tuple[str, Any]] = [("limit", _PAGE)]
        if token:
            query.append(("continue", token))
        body = _get(api, path, query)
        page = Loaded()
        items = [i for i in body.get("items") or () if not _owned(i)]
        for i in items:
            if isinstance(i, dict) and isinstance(i.get("metadata"), dict):
                i["metadata"].pop("managedFields", None)
        doc = {"kind": str(body.get("kind", "")), "apiVersion": body.get("apiVersion", ""), "items": items}
        objects_of(doc, "", page)
        out.extend(page.objects)
        token = str((body.get("metadata") or {}).get("continue") or "")
        if not token:
            return out


def load_cluster(
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    resources: Sequence[Resource] = RESOURCES,
) -> Loaded:
    """The objects of the cluster of `context` (in `namespace` only when given: cluster-wide
    kinds are then left out), and what could not be listed."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api, name = _client(kubeconfig, context)
    where = f"cluster:{name}"
    out = Loaded()
    host = api.configuration.host
    try:
        for r in resources:
            if namespace and not r.namespaced:
                continue
            path = r.path(namespace)
            try:
                objects = _list(api, path)
            except _Refused as e:
                if e.status == 401:
                    raise SourceError(
                        f"{host}: 401 Unauthorized: the API server refused the credentials of context "
                        f"{name!r}",
                        Location(kubeconfig or "kubeconfig"),
                    ) from None
                out.errors.append(LoadError(f"{path}: not listed: {e}", Location(where)))
                continue
            except ApiException as e:  # the client's TLS failures (status 0)
                raise SourceError(
                    f"cannot reach the API server {host}: {e.reason}", Location(where)
                ) from None
            except (HTTPError, OSError) as e:
                inner = getattr(e, "reason", None) or e  # urllib3's MaxRetryError wraps the socket error
                raise SourceError(f"cannot reach the API server {host}: {inner}", Location(where)) from None
            except orjson.JSONDecodeError:
                out.errors.append(LoadError(f"{path}: the answer is not JSON", Location(where)))
                continue
            for o in objects:
                o.file = where
            out.objects.extend(objects)
    finally:
        api.close()
    out.files = 1
    return out
