"""The KubeArmorPolicy export: the golden file, KubeArmor's CRD schema, and the mappings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stockade.policy.export import ExportError, ExportResult, export
from stockade.policy.model import WorkloadPolicy

DATA = Path(__file__).parent / "data" / "export"
SCHEMAS: dict[str, Any] = yaml.safe_load((DATA / "kubearmor.schema.yaml").read_text())


def policy(**spec: Any) -> WorkloadPolicy:
    spec.setdefault("workload", "k8s/shop/deployment/web")
    return WorkloadPolicy.model_validate(
        {
            "apiVersion": "stockade.dev/v1alpha1",
            "kind": "WorkloadPolicy",
            "metadata": {"name": "p"},
            "spec": spec,
        }
    )


def load(name: str) -> WorkloadPolicy:
    return WorkloadPolicy.model_validate(yaml.safe_load((DATA / name).read_text()))


def ka(p: WorkloadPolicy, **options: Any) -> tuple[dict[str, Any], ExportResult]:
    r = export(p, "kubearmor", **options)
    doc: dict[str, Any] = yaml.safe_load(r.text)
    assert schema_errors(doc, SCHEMAS[doc["kind"]]) == []
    return doc, r


# -- a JSON-schema subset, enough for the CRD's structural schema ----------------------------------
_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
}


def schema_errors(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Every way `value` breaks `schema` (type, properties, additionalProperties, required, enum,
    pattern (searched, as the API server does), maxLength, minimum, maximum, items, maxItems)."""
    want = schema.get("type")
    if want and (not isinstance(value, _TYPES[want]) or (want == "integer" and isinstance(value, bool))):
        return [f"{where or '/'}: {value!r} is not {want}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: {value!r} longer than {schema['maxLength']}")
    if isinstance(value, int) and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{where}: {value} out of range")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{where}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{where}/{i}")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, where)
    return errors


def _object_errors(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    errors = [f"{where}: {k} is required" for k in schema.get("required", []) if k not in value]
    props: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for k, v in value.items():
        if k in props:
            errors += schema_errors(v, props[k], f"{where}/{k}")
        elif extra is False:
            errors.append(f"{where}: unknown field {k}")
        elif isinstance(extra, dict):
            errors += schema_errors(v, extra, f"{where}/{k}")
    return errors


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d["spec"].update(actoin="Block"), "unknown field actoin"),
        (lambda d: d["spec"].update(action="Deny"), "not one of"),
        (lambda d: d["spec"]["process"]["matchPaths"].append({"path": "/usr/bin/"}), "does not match"),
        (lambda d: d["spec"]["file"]["matchDirectories"].append({"dir": "/var/log"}), "does not match"),
        (lambda d: d["spec"]["file"]["matchPaths"].append({"path": "/" + "a" * 200}), "longer than 200"),
        (
            lambda d: d["spec"]["capabilities"]["matchCapabilities"].append({"capability": "bpf"}),
            "does not match",
        ),
        (
            lambda d: d["spec"]["network"]["matchProtocols"].append({"action": "Block"}),
            "protocol is required",
        ),
        (lambda d: d["spec"]["selector"]["matchLabels"].update(app=1), "is not string"),
        (lambda d: d["spec"].update(severity=11), "out of range"),
    ],
)
def test_the_schema_check_rejects_what_the_crd_rejects(change: Any, error: str) -> None:
    doc: dict[str, Any] = yaml.safe_load((DATA / "web.kubearmor.yaml").read_text())
    assert schema_errors(doc, SCHEMAS["KubeArmorPolicy"]) == []
    change(doc)
    assert any(error in e for e in schema_errors(doc, SCHEMAS["KubeArmorPolicy"]))


# -- the export ------------------------------------------------------------------------------------
def test_golden() -> None:
    r = export(load("web.policy.yaml"), "kubearmor")
    assert r.text == (DATA / "web.kubearmor.yaml").read_text()
    assert schema_errors(yaml.safe_load(r.text), SCHEMAS["KubeArmorPolicy"]) == []
    # every warning is also a comment of the text
    assert all(f"# warning: {w}" in r.text for w in r.warnings[1:])
    assert r.warnings[0].startswith("What no Allow item allows gets KubeArmor's default posture")


def test_the_output_is_deterministic() -> None:
    p = load("web.policy.yaml")
    assert len({export(p, "kubearmor").text for _ in range(3)}) == 1


def test_an_allow_default_exports_only_the_block_and_audit_rules() -> None:
    doc, r = ka(
        policy(
            action="allow",
            process=[{"path": "/usr/sbin/nginx"}, {"path": "/bin/sh", "action": "block"}],
            file=[
                {"path": "/etc/shadow", "access": ["read", "write"], "action": "audit"},
                {"path": "/srv/**"},
            ],
            network=[{"protocol": "udp", "action": "block"}, {"peer": {"cidr": "10.0.0.0/8"}}],
            privileged=[{"operation": "ptrace", "action": "block"}],
        )
    )
    spec = doc["spec"]
    assert spec["action"] == "Block"
    assert spec["process"] == {"matchPaths": [{"path": "/bin/sh", "action": "Block"}]}
    assert spec["file"] == {"matchPaths": [{"path": "/etc/shadow", "action": "Audit"}]}
    assert spec["network"] == {"matchProtocols": [{"protocol": "udp", "action": "Block"}]}
    assert spec["capabilities"] == {"matchCapabilities": [{"capability": "sys_ptrace", "action": "Block"}]}
    assert not any("posture" in w for w in r.warnings)


@pytest.mark.parametrize("action", ["block", "audit"])
def test_a_section_without_allow_rules_gets_spec_action_explicitly(action: str) -> None:
    doc, r = ka(policy(action=action, process=[{"path": "/usr/sbin/nginx"}]))
    want = action.capitalize()
    assert doc["spec"]["process"] == {"matchPaths": [{"path": "/usr/sbin/nginx", "action": "Allow"}]}
    assert doc["spec"]["file"] == {"matchDirectories": [{"dir": "/", "recursive": True, "action": want}]}
    assert doc["spec"]["network"]["matchProtocols"][:2] == [
        {"protocol": "tcp", "action": want},
        {"protocol": "udp", "action": want},
    ]
    assert f"kubearmor-file-posture={action} kubearmor-network-posture={action}" in r.warnings[0]


def test_globs_become_directories_and_a_wildcard_inside_a_component_is_widened() -> None:
    doc, r = ka(
        policy(
            file=[
                {"path": "/var/log/app/*", "access": ["write"]},
                {"path": "/srv/**", "access": ["read"]},
                {"path": "/proc/*/status", "access": ["read"]},
                {"path": "/tmp/tmp.*", "access": ["read", "write"]},
            ]
        )
    )
    assert doc["spec"]["file"]["matchDirectories"] == [
        {"dir": "/var/log/app/", "action": "Allow"},
        {"dir": "/srv/", "recursive": True, "readOnly": True, "action": "Allow"},
        {"dir": "/proc/", "recursive": True, "readOnly": True, "action": "Allow"},
        {"dir": "/tmp/", "action": "Allow"},
    ]
    assert "file rule file-3: '/proc/*/status' has a wildcard inside a path component" in r.text
    assert any("widened to everything below /proc/" in w for w in r.warnings)
    assert any("'/tmp/tmp.*'" in w and "widened to the entries of /tmp/" in w for w in r.warnings)
    assert any("file-1: write-only access cannot be expressed" in w for w in r.warnings)


def test_read_only_means_allow_reads_on_allow_items_and_block_writes_on_block_items() -> None:
    doc, r = ka(
        policy(
            file=[
                {"name": "conf", "path": "/etc/app.conf", "access": ["read"]},
                {"name": "no-write", "path": "/etc/passwd", "access": ["write"], "action": "block"},
                {"name": "no-read", "path": "/etc/shadow", "access": ["read"], "action": "block"},
                {"name": "run", "path": "/opt/app/bin/**", "access": ["read", "exec"]},
            ]
        )
    )
    assert doc["spec"]["file"]["matchPaths"] == [
        {"path": "/etc/app.conf", "readOnly": True, "action": "Allow"},
        {"path": "/etc/passwd", "readOnly": True, "action": "Block"},
        {"path": "/etc/shadow", "action": "Block"},
    ]
    # exec access is a process match
    assert doc["spec"]["process"]["matchDirectories"] == [
        {"dir": "/opt/app/bin/", "recursive": True, "action": "Allow"}
    ]
    assert doc["spec"]["file"]["matchDirectories"] == [
        {"dir": "/opt/app/bin/", "recursive": True, "readOnly": True, "action": "Allow"}
    ]
    assert any("no-read: block of reads alone cannot be expressed: writes too" in w for w in r.warnings)


def test_a_parent_is_from_source_and_arguments_cannot_be_expressed() -> None:
    doc, r = ka(
        policy(
            process=[
                {"name": "a", "path": "/bin/sleep", "parent": "/bin/bash"},
                {"name": "b", "path": "/bin/ls", "parent": "/usr/*/bash", "args": "-l *"},
            ]
        )
    )
    assert doc["spec"]["process"]["matchPaths"] == [
        {"path": "/bin/sleep", "fromSource": [{"path": "/bin/bash"}], "action": "Allow"},
        {"path": "/bin/ls", "action": "Allow"},
    ]
    assert "process rule b: parent pattern '/usr/*/bash' cannot be expressed: any parent" in r.warnings
    assert "process rule b: argument pattern '-l *' cannot be expressed: any arguments" in r.warnings


def test_network_rules_are_protocols_and_a_blocked_dns_name_is_a_dns_query_rule() -> None:
    doc, r = ka(
        policy(
            network=[
                {"name": "dns", "peer": {"cidr": "10.96.0.10/32"}, "ports": [53], "protocol": "udp"},
                {"name": "evil", "peer": {"dns": "*.evil.example"}, "action": "block"},
                {"name": "meta", "peer": {"cidr": "169.254.169.254/32"}, "action": "block"},
                {"name": "web", "direction": "listen", "ports": [8080]},
            ],
            privileged=[{"operation": "raw_socket"}],
        )
    )
    assert doc["spec"]["network"] == {
        "matchProtocols": [
            {"protocol": "udp", "action": "Allow"},
            {"protocol": "tcp", "action": "Allow"},
            {"protocol": "raw", "action": "Allow"},  # allowed: the allow-list must name it
        ],
        "matchDNSQueries": [{"domain": "evil.example", "action": "Block"}],
    }
    assert any(w.startswith("network rule meta: a block of some peers or ports cannot") for w in r.warnings)
    assert any(w.startswith("network rule dns: peers and ports cannot be expressed") for w in r.warnings)
    assert "net_raw" not in str(doc["spec"].get("capabilities"))


def test_capabilities_are_blocked_for_what_the_policy_does_not_allow() -> None:
    doc, r = ka(
        policy(
            privileged=[
                {"operation": "mount"},
                {"operation": "unshare", "name": "no-unshare", "action": "block"},
                {"operation": "ptrace", "action": "audit"},
                {"operation": "setuid"},
                {"operation": "setgid"},
                {"operation": "chroot"},
                {"operation": "module_load"},
                {"operation": "raw_socket"},
                {"operation": "memfd_create"},
            ]
        )
    )
    # mount is allowed, so sys_admin cannot be blocked for unshare (nor for setns and bpf)
    assert doc["spec"]["capabilities"] == {
        "matchCapabilities": [{"capability": "sys_ptrace", "action": "Audit"}]
    }
    assert any(
        w.startswith("privileged operation unshare: capability sys_admin is shared") for w in r.warnings
    )
    assert not any("memfd_create" in w for w in r.warnings)


def test_a_plain_container_is_selected_by_its_name_and_host_gets_a_host_policy() -> None:
    doc, r = ka(policy(workload="container/localhost/web/web-app", process=[{"path": "/bin/httpd"}]))
    assert any(w.startswith("KubeArmor selects a plain container by its exact name") for w in r.warnings)
    assert doc["kind"] == "KubeArmorPolicy"
    assert "namespace" not in doc["metadata"]
    assert doc["spec"]["selector"] == {"matchLabels": {"kubearmor.io/container.name": "web-app"}}
    doc, r = ka(policy(workload="host", process=[{"path": "/usr/sbin/sshd"}], network=[{"protocol": "tcp"}]))
    assert doc["kind"] == "KubeArmorHostPolicy"
    assert doc["spec"]["nodeSelector"] == {"matchLabels": {"kubearmor.io/hostname": "*"}}
    assert "network" not in doc["spec"] and "capabilities" not in doc["spec"]
    assert "a KubeArmorHostPolicy's network items need fromSource: network left out" in r.warnings
    assert "hostDefaultFilePosture: block" in r.text


def test_the_labels_option_selects_the_pods() -> None:
    doc, _ = ka(policy(process=[{"path": "/app"}]), labels={"app.kubernetes.io/name": "shop-web"})
    assert doc["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "shop-web"}}
    assert doc["metadata"] == {"name": "p", "namespace": "shop"}


@pytest.mark.parametrize("workload", ["k8s/shop/web", "k8s/shop/replicaset/web", "container/", "pod/x", ""])
def test_a_bad_workload_id_is_an_export_error(workload: str) -> None:
    with pytest.raises(ExportError, match="is not a workload id"):
        export(policy(workload=workload, process=[{"path": "/x"}]), "kubearmor")


def test_exceptions_are_items_of_spec_action_where_kubearmor_can_name_them_exactly() -> None:
    doc, r = ka(
        policy(
            file=[
                {
                    "name": "www",
                    "path": "/srv/www/**",
                    "except": [
                        "/srv/www/private/**",
                        "/srv/www/secret.txt",
                        "/srv/www/shared/*",
                        "/**/*.key",
                        "/etc/x",
                    ],
                    "access": ["read"],
                },
                {"name": "shared", "path": "/srv/www/shared/readme", "access": ["read"]},
                {"name": "bin", "path": "/opt/**", "except": ["/opt/secret"], "access": ["exec"]},
                {"name": "no-tmp", "path": "/tmp/**", "except": ["/tmp/ok/**"], "action": "block"},
            ]
        )
    )
    assert doc["spec"]["file"] == {
        "matchDirectories": [
            {"dir": "/srv/www/", "recursive": True, "readOnly": True, "action": "Allow"},
            {"dir": "/srv/www/private/", "recursive": True, "action": "Block"},
            {"dir": "/tmp/", "recursive": True, "action": "Block"},
        ],
        "matchPaths": [
            {"path": "/srv/www/secret.txt", "action": "Block"},
            {"path": "/srv/www/shared/readme", "readOnly": True, "action": "Allow"},
        ],
    }
    assert doc["spec"]["process"]["matchPaths"] == [{"path": "/opt/secret", "action": "Block"}]
    www = "file rule www: except"
    assert [w for w in r.warnings if "except" in w] == [
        f"{www} '/srv/www/private/**': KubeArmor has no exceptions: a Block item for it",
        f"{www} '/srv/www/secret.txt': KubeArmor has no exceptions: a Block item for it",
        f"{www} '/srv/www/shared/*' cannot be expressed (KubeArmor has no exceptions; an item would "
        "also deny what rule shared allows): the rule allows it",
        f"{www} '/**/*.key' cannot be expressed (KubeArmor has no exceptions; a wildcard inside a path "
        "component): the rule allows it",
        "file rule bin: except '/opt/secret': KubeArmor has no exceptions: a Block item for it",
        "file rule no-tmp: except '/tmp/ok/**' cannot be expressed (KubeArmor has no exceptions): blocked too",
    ]


def test_an_escaped_path_is_the_path_it_names() -> None:
    doc, r = ka(
        policy(
            process=[{"path": "/usr/bin/[[]", "parent": "/bin/a[?]"}],
            file=[{"path": "/srv/[*]/x", "access": ["read"]}],
        )
    )
    assert doc["spec"]["process"]["matchPaths"] == [
        {"path": "/usr/bin/[", "fromSource": [{"path": "/bin/a?"}], "action": "Allow"}
    ]
    assert doc["spec"]["file"]["matchPaths"] == [{"path": "/srv/*/x", "readOnly": True, "action": "Allow"}]
    assert not any("wildcard" in w or "cannot be expressed: any parent" in w for w in r.warnings)
