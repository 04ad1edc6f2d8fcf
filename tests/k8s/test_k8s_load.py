"""The manifest loader: objects from YAML, JSON, Lists, Helm and kustomize output with the line of
every field; what is not Kubernetes YAML reported with file, line and column; hostile input refused."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import SHARED_DATA
from stockade.k8s import load
from stockade.k8s.load import LoadError, load_paths, load_text

KUBESEC = SHARED_DATA / "k8s" / "kubesec-assets"

DEPLOY = """\
# a comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: nginx:1.27
          securityContext:
            privileged: true
---
---
apiVersion: v1
kind: Service
metadata: {name: web}
"""


def test_every_field_path_has_its_line() -> None:
    got = load_text(DEPLOY, "d.yaml")
    assert not got.errors
    dep, svc = got.objects
    assert (dep.kind, dep.name, dep.namespace, dep.file, dep.line, dep.doc) == (
        "Deployment",
        "web",
        "shop",
        "d.yaml",
        2,
        0,
    )
    c0 = ("spec", "template", "spec", "containers", 0)
    assert dep.lines[("spec", "replicas")] == 8
    assert dep.lines[c0] == 12
    assert dep.lines[(*c0, "image")] == 13
    assert dep.lines[(*c0, "securityContext", "privileged")] == 15
    assert dep.line_of((*c0, "securityContext", "privileged", "nope")) == 15
    assert (
        dep.body["spec"]["replicas"] == 2
        and dep.body["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] is True
    )
    # the empty document between them counts: documents keep their index in the file
    assert (svc.kind, svc.line, svc.doc, svc.lines[("metadata", "name")]) == ("Service", 18, 2, 20)


def test_values_are_typed_as_yaml_1_1_and_the_api_server_read_them() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {a: 'yes', b: \"1\"}\n"
        "spec:\n  hostNetwork: yes\n  containers:\n  - name: c\n    image: x\n"
        "    securityContext: {runAsUser: 0x10, runAsNonRoot: false}\n    x: ~\n    y: 2024-01-02\n"
    )
    (pod,) = load_text(text, "p.yaml").objects
    spec = pod.body["spec"]
    assert spec["hostNetwork"] is True
    assert pod.body["metadata"]["labels"] == {"a": "yes", "b": "1"}
    c = spec["containers"][0]
    assert c["securityContext"] == {"runAsUser": 16, "runAsNonRoot": False}
    assert c["x"] is None and str(c["y"]) == "2024-01-02"


def test_merge_keys_and_application_tags() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
        "spec:\n  containers:\n  - &base {name: a, image: x, securityContext: {privileged: true}}\n"
        "  - <<: *base\n    name: b\n  nodeName: !Ref node\n"
    )
    (pod,) = load_text(text, "p.yaml").objects
    a, b = pod.body["spec"]["containers"]
    assert b == {**a, "name": "b"}
    assert pod.body["spec"]["nodeName"] == "node"


def test_json_and_lists_with_items_as_the_api_server_lists_them() -> None:
    doc = {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1"},
        "items": [
            {
                "metadata": {"name": "a", "namespace": "n"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
            {"metadata": {"name": "b"}, "spec": {"containers": []}},
        ],
    }
    text = json.dumps(doc, indent=2)
    got = load_text(text, "pods.json")
    assert not got.errors
    a, b = got.objects
    assert (a.kind, a.api_version, a.name, b.name) == ("Pod", "v1", "a", "b")
    # lines of an item are those of the item's fields in the file
    lines = text.splitlines()
    assert lines[a.lines[("spec", "containers", 0, "image")] - 1].strip() == '"image": "x"'
    assert b.line is not None and lines[b.line - 1].strip() == "{" and a.doc == b.doc == 0
    # kind: List items carry their own kind; a bad item is an error, the others load
    lst = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n- 42\n"
    got = load_text(lst, "l.yaml")
    assert [o.name for o in got.objects] == ["p"]
    assert [(e.line, e.message) for e in got.errors] == [(7, "not a Kubernetes object: a scalar (42)")]


def test_json_with_tabs_loads_without_field_lines() -> None:
    text = '{\n\t"apiVersion": "v1",\n\t"kind": "Pod",\n\t"metadata": {"name": "t"}\n}\n'
    got = load_text(text, "t.json")
    assert [o.name for o in got.objects] == ["t"] and not got.errors


HELM = Path(__file__).parent / "data" / "scan-helm-rendered.yaml"


def test_helm_output_names_the_template_of_each_document() -> None:
    got = load_text(HELM.read_text(), "rendered.yaml")
    sa, dep, cm = got.objects
    assert got.template_at("rendered.yaml", sa.line) == "shop/templates/serviceaccount.yaml"
    image_line = dep.lines[("spec", "template", "spec", "containers", 0, "image")]
    assert image_line == 18
    assert got.template_at("rendered.yaml", image_line) == "shop/templates/deployment.yaml"
    assert got.template_at("rendered.yaml", cm.line) is None
    assert got.template_at("other.yaml", 3) is None


def test_kustomize_output_on_standard_input() -> None:
    built = (
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: prod-web\n  namespace: prod\n"
        "spec:\n  template:\n    spec:\n      containers:\n      - image: web:2\n        name: web\n"
    )
    got = load_paths(["-"], stdin=io.BytesIO(built.encode()))
    assert [(o.kind, o.name, o.file, o.line) for o in got.objects] == [
        ("Namespace", "prod", "-", 1),
        ("Deployment", "prod-web", "-", 6),
    ]
    assert got.files == 1 and not got.errors
    # with buildMetadata: [originAnnotations], each object names the file it came from
    origin = built.replace(
        "  name: prod-web\n",
        "  name: prod-web\n  annotations:\n    config.kubernetes.io/origin: |\n      path: base/web.yaml\n",
    )
    got = load_paths(["-"], stdin=io.BytesIO(origin.encode()))
    ns, web = got.objects
    assert got.template_at("-", ns.line) is None
    assert (
        got.template_at("-", web.line_of(("spec", "template", "spec", "containers", 0, "image")))
        == "base/web.yaml"
    )


def test_directories_recurse_for_manifests_and_files_named_are_read(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\n"
    (tmp_path / "a" / "b" / "deep.yml").write_text(pod % "deep")
    (tmp_path / "a" / "one.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}})
    )
    (tmp_path / "a" / "notes.txt").write_text(pod % "skipped")
    (tmp_path / ".git" / "hidden.yaml").write_text(pod % "hidden")
    (tmp_path / "top.yaml").write_text(pod % "top")
    got = load_paths([str(tmp_path)])
    assert sorted(o.name for o in got.objects) == ["deep", "j", "top"] and got.files == 3
    got = load_paths([str(tmp_path / "a" / "notes.txt")])
    assert [o.name for o in got.objects] == ["skipped"]
    # a file named twice, or also inside a directory named, is read once
    got = load_paths([str(tmp_path / "top.yaml"), str(tmp_path), f"{tmp_path}/a/../top.yaml"])
    assert sorted(o.name for o in got.objects) == ["deep", "j", "top"] and got.files == 3


@pytest.mark.parametrize(
    ("name", "line", "column", "message"),
    [
        ("empty-file", 1, None, "empty file: no Kubernetes object"),
        ("empty-json-file", 1, None, "not a Kubernetes object: no apiVersion or kind (keys: none)"),
        ("form-prefix-not-file.json", 2, 15, "YAML syntax error: mapping values are not allowed in this context"),
        ("form-prefix-not-file.yml", 1, None, "not a Kubernetes object: no apiVersion (keys: not-file=apiVersion, kind, metadata)"),
        ("invalid-type.yml", 2, None, "Deployment2 'demo': apps/v1 has no kind 'Deployment2'"),
        ("invalid-input-pod-dump.json", 1, None, "not a Kubernetes object: no apiVersion (keys: api_version, kind, metadata)"),
    ],
)  # fmt: skip
def test_kubesec_files_that_are_not_kubernetes_yaml(
    name: str, line: int, column: int | None, message: str
) -> None:
    path = str(KUBESEC / name)
    got = load_paths([path])
    assert not got.objects
    assert [(e.file, e.line, e.column, e.message) for e in got.errors] == [(path, line, column, message)]
    assert str(got.errors[0]).startswith(f"{path}:{line}")


def test_kubesec_invalid_schema_is_refused_at_each_field() -> None:
    path = str(KUBESEC / "invalid-schema.yml")
    got = load_paths([path])
    assert not got.objects
    assert [(e.line, e.message) for e in got.errors] == [
        (6, "Deployment 'demo': spec.replicas must be an integer, not '2'"),
        (9, "Deployment 'demo': spec.template.spec.hostNetwork must be a boolean, not '1'"),
    ]


def test_kubesec_very_long_file_loads() -> None:
    (pod,) = load_paths([str(KUBESEC / "very-long-file")]).objects
    assert pod.kind == "Pod" and pod.line == 1 and max(pod.lines.values()) > 200


def test_every_kubesec_file_loads_objects_or_gives_located_errors() -> None:
    files = sorted(p for p in KUBESEC.rglob("*") if p.is_file())
    assert len(files) >= 70
    for p in files:
        got = load_paths([str(p)])  # must not raise
        assert got.objects or got.errors, p
        for e in got.errors:
            assert e.file == str(p) and (e.line is None or e.line >= 1), e
        for o in got.objects:
            assert o.kind and o.api_version and o.line and o.lines, p
    loaded = load_paths([str(KUBESEC)])  # the walk: files with a manifest's extension only
    assert len(loaded.objects) > 80 and loaded.files == len([p for p in files if p.suffix in load.EXTENSIONS])
    assert {e.file for e in loaded.errors} == {
        str(KUBESEC / n)
        for n in (
            "form-prefix-file.json",
            "form-prefix-file.yml",
            "form-prefix-not-file.json",
            "form-prefix-not-file.yml",
            "invalid-input-pod-dump.json",
            "invalid-schema.yml",
            "invalid-type.yml",
            "multi.yml",  # a ConfigMap named 1 in namespace 2: the API server refuses it
        )
    }
    assert sum(o.file == str(KUBESEC / "multi.yml") for o in loaded.objects) == 4


BILLION_LAUGHS = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
)


def test_billion_laughs_is_refused_quickly() -> None:
    start = time.perf_counter()
    got = load_text(BILLION_LAUGHS, "lol.yaml")
    assert time.perf_counter() - start < 2
    assert not got.objects
    (e,) = got.errors
    assert (e.line, e.column) == (1, 1) and "refused (a billion laughs?)" in e.message
    # a few aliases are fine
    fine = load_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: &l {a: b}, annotations: *l}\n", "f"
    )
    assert fine.objects[0].body["metadata"]["annotations"] == {"a": "b"}


def test_binary_undecodable_huge_and_deep_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: caf\xe9\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("apiVersion: v1\nkind: Pod\nspec: " + "[" * 5000 + "]" * 5000 + "\n")
    deeper = tmp_path / "deeper.yaml"  # below libyaml's limit, above the loader's
    deeper.write_text("apiVersion: v1\nkind: Pod\nspec: " + "[" * 500 + "]" * 500 + "\n")
    ctrl = tmp_path / "ctrl.yaml"
    ctrl.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\x07b\n")
    got = load_paths([str(binary), str(latin), str(deep), str(deeper), str(ctrl)])
    assert not got.objects
    errors = {Path(e.file).name: e for e in got.errors}
    assert errors["blob.yaml"].message == "not text (a binary file)"
    assert (errors["latin.yaml"].line, errors["latin.yaml"].column, errors["latin.yaml"].message) == (
        4,
        12,
        "not UTF-8 text",
    )
    assert errors["deep.yaml"].message.startswith("YAML syntax error: exceeded maximum nesting depth")
    assert errors["deeper.yaml"].message == f"nested deeper than {load.MAX_DEPTH} levels"
    assert (errors["ctrl.yaml"].line, errors["ctrl.yaml"].column, errors["ctrl.yaml"].message) == (
        4,
        10,
        "not YAML text: control characters are not allowed (#x0007)",
    )
    monkeypatch.setattr(load, "MAX_BYTES", 1000)
    big = tmp_path / "big.yaml"
    big.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n" + "  k: v\n" * 1000)
    (e,) = load_paths([str(big)]).errors
    assert e.message.startswith("larger than") and e.file == str(big)


def test_a_syntax_error_keeps_the_documents_before_it() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: [unclosed\n"
    got = load_text(text, "s.yaml")
    assert [o.name for o in got.objects] == ["ok"]
    (e,) = got.errors
    assert isinstance(e, LoadError) and e.line == 7 and e.message.startswith("YAML syntax error")


def test_a_large_list_loads_in_time_proportional_to_its_size() -> None:
    """Field lines cost no more than PyYAML's own construction, and a List of many items stays
    linear (a ratio against yaml.load with the C loader, in the same run)."""
    import yaml

    def pod_list(n: int) -> str:
        items = [
            {
                "metadata": {"name": f"p{i}", "namespace": "n", "labels": {"app": "a"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "x:1",
                            "env": [{"name": f"E{j}", "value": "v"} for j in range(5)],
                        }
                    ]
                },
            }
            for i in range(n)
        ]
        return json.dumps({"apiVersion": "v1", "kind": "PodList", "items": items}, indent=1)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(2):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    large = pod_list(500)
    assert len(load_text(large, "l.json").objects) == 500
    ours = best(lambda: load_text(large, "l.json"))
    pyyaml = best(lambda: yaml.load(large, Loader=loader))
    # about 0.5 measured; a step quadratic in the items (each item's lines picked from all the
    # list's) made it 10
    assert ours < 2 * pyyaml, (ours, pyyaml)
