"""`stockade k8s admission serve|config|review`: the admission webhook (docs/k8s-admission.md)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
import yaml

from stockade.cli import common, k8s_cmd
from stockade.cli.common import DataDirOpt, DbOpt
from stockade.errors import SourceError, UsageError

if TYPE_CHECKING:
    from stockade.k8s.admission.engine import Engine
    from stockade.k8s.admission.load import LoadedAdmissionPolicy

__all__ = ["register"]

admission_app = typer.Typer(
    help="The admission webhook: serve AdmissionPolicies, print its configuration, review offline.",
    no_args_is_help=True,
)

PolicyOpt = Annotated[
    list[str],
    typer.Option("--policy", "-p", help="AdmissionPolicy YAML files or directories (repeatable)."),
]
FailOpenOpt = Annotated[
    bool | None,
    typer.Option(
        "--fail-open/--fail-closed",
        help="When evaluation errors: allow with a warning, or deny (default: each policy's failurePolicy).",
        show_default=False,
    ),
]
ScanResultsOpt = Annotated[
    str | None,
    typer.Option("--scan-results", help="A directory of `stockade scan image --format json` outputs."),
]
StoreResultsOpt = Annotated[
    bool,
    typer.Option(
        "--store-results",
        help="Also the image package sets of the Stockade store, matched with its advisories (--db, --data-dir).",
    ),
]
SignaturesOpt = Annotated[
    str | None, typer.Option("--signatures", help="A directory of cosign signatures and sigstore bundles.")
]
TlsDirOpt = Annotated[
    str | None,
    typer.Option("--tls-dir", help="Where the CA and serving certificate are (made when missing)."),
]
ServiceOpt = Annotated[
    str, typer.Option("--service", help="The webhook's Service, NAMESPACE/NAME (its DNS names).")
]
DEFAULT_SERVICE = "stockade/stockade-admission"


def _policies(paths: list[str]) -> list[LoadedAdmissionPolicy]:
    from stockade.k8s.admission.load import load_admission_policies

    if not paths:
        raise UsageError("give at least one --policy FILE")
    for p in paths:
        if not Path(p).exists():
            raise UsageError(f"--policy {p}: no such file or directory")
    notes: list[str] = []
    found = load_admission_policies(paths, notes=notes)
    for n in notes:
        common.err_console.print(n, markup=False)
    if not found:
        raise UsageError(f"no AdmissionPolicy document in {', '.join(paths)}")
    return found


def _engine(
    policies: list[str],
    fail_open: bool | None,
    scan_results: str | None,
    signatures: str | None,
    refresh: float,
    store: tuple[bool, str | None, str | None] = (False, None, None),
) -> Engine:
    from stockade.k8s.admission.engine import Engine
    from stockade.k8s.admission.refresh import Refreshed
    from stockade.k8s.admission.signatures import Signature, load_store
    from stockade.k8s.admission.vulnindex import VulnIndex, load_results

    loaded = _policies(policies)
    results: list[Refreshed[VulnIndex]] = []
    sigs: Refreshed[dict[str, list[Signature]]] | None = None
    if scan_results is not None:
        d = scan_results
        results.append(Refreshed(lambda: load_results(d), VulnIndex({}, {}), refresh))
    if store[0]:
        from stockade.cli.locate import open_store
        from stockade.k8s.admission.storeresults import StoreResults

        results.append(Refreshed(StoreResults(open_store(store[1], store[2])), VulnIndex({}, {}), refresh))
    if signatures is not None:
        s = signatures
        empty: dict[str, list[Signature]] = {}
        sigs = Refreshed(lambda: load_store(s), empty, refresh)
    for name, source in [*(("scan results", r) for r in results), ("--signatures", sigs)]:
        if source is not None and source.error is not None:
            common.print_error(f"{name}: {source.error} (requests needing it follow the failure policy)")
    return Engine(
        loaded,
        fail_closed=None if fail_open is None else not fail_open,
        scan_results=results,
        signatures=sigs,
    )


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r}: give ADDRESS:PORT (0.0.0.0:8443)")
    return host.strip("[]") or "0.0.0.0", int(port)


@admission_app.command("serve")
def serve_cmd(
    policy: PolicyOpt = [],  # noqa: B006 - typer reads the default
    listen: Annotated[str, typer.Option("--listen", help="ADDRESS:PORT to serve HTTPS on.")] = "0.0.0.0:8443",
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", help="The serving certificate chain (PEM).")
    ] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="Its private key (PEM).")] = None,
    tls_dir: TlsDirOpt = None,
    service: ServiceOpt = DEFAULT_SERVICE,
    san: Annotated[
        list[str], typer.Option("--san", help="Another DNS name or IP of the certificate made (repeatable).")
    ] = [],  # noqa: B006
    fail_open: FailOpenOpt = None,
    scan_results: ScanResultsOpt = None,
    store_results: StoreResultsOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    signatures: SignaturesOpt = None,
    refresh: Annotated[
        float,
        typer.Option("--refresh", min=0.1, help="Seconds between re-reads of scan results and signatures."),
    ] = 10.0,
    audit_log: Annotated[
        str | None,
        typer.Option("--audit-log", help="Append a JSON line per decision here (default: stderr)."),
    ] = None,
) -> None:
    """Serve the webhook: POST /validate or /validate/POLICY (AdmissionReview v1) and GET /healthz, over TLS."""
    from stockade.k8s.admission.server import AdmissionServer, AuditLog
    from stockade.k8s.admission.tlsfiles import ensure_tls_dir, server_context

    address = _listen(listen)
    if (tls_cert is None) != (tls_key is None) or (tls_cert is None and tls_dir is None):
        raise UsageError("give --tls-cert and --tls-key, or --tls-dir (a certificate is made there)")
    engine = _engine(policy, fail_open, scan_results, signatures, refresh, (store_results, db, data_dir))
    if tls_cert is not None and tls_key is not None:
        cert, key = tls_cert, tls_key
    else:
        assert tls_dir is not None
        d = ensure_tls_dir(tls_dir, _names(service, san))
        cert, key = str(d / "tls.crt"), str(d / "tls.key")
    try:
        ctx = server_context(cert, key)
    except (OSError, ValueError) as e:
        raise SourceError(f"cannot load the serving certificate {cert}: {e}") from None
    stream = open(audit_log, "ab") if audit_log else sys.stderr.buffer  # noqa: SIM115 - lives as long as the server
    try:
        server = AdmissionServer(address, engine, ctx, AuditLog(stream), on_error=common.print_error)
    except OSError as e:
        raise UsageError(f"--listen {listen}: {e.strerror or e}") from None
    for source in [*engine.scan_results, engine.signatures]:
        if source is not None:
            source.start()

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    common.err_console.print(
        f"stockade: admission webhook on https://{host!s}:{port} ({len(engine.policies)} policies)",
        markup=False,
    )
    server.serve_forever(poll_interval=0.5)
    server.server_close()


def _names(service: str, san: list[str]) -> list[str]:
    from stockade.k8s.admission.tlsfiles import service_names

    try:
        return [*service_names(service), *san]
    except ValueError as e:
        raise UsageError(str(e)) from None


@admission_app.command("config")
def config_cmd(
    policy: PolicyOpt = [],  # noqa: B006
    service: Annotated[
        str | None, typer.Option("--service", help="The webhook's Service, NAMESPACE/NAME.")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="The webhook's base URL instead of a Service.")
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The Service's port.")] = 443,
    tls_dir: TlsDirOpt = None,
    ca_file: Annotated[
        str | None, typer.Option("--ca-file", help="The caBundle (PEM), instead of --tls-dir.")
    ] = None,
    san: Annotated[list[str], typer.Option("--san", help="Another name of the certificate made.")] = [],  # noqa: B006
    fail_open: FailOpenOpt = None,
    timeout: Annotated[int, typer.Option("--timeout", min=1, max=30, help="timeoutSeconds.")] = 5,
    name: Annotated[str, typer.Option("--name", help="The configuration's name.")] = "stockade-admission",
    output: str | None = common.OutputOpt,
) -> None:
    """Print the ValidatingWebhookConfiguration that registers the webhook (YAML, or JSON)."""
    from stockade.k8s.admission.tlsfiles import ensure_tls_dir
    from stockade.k8s.admission.webhookconfig import webhook_configuration

    if (service is None) == (url is None):
        raise UsageError("give one of --service NAMESPACE/NAME and --url URL")
    if url is not None and not url.startswith("https://"):
        raise UsageError(f"--url {url!r}: kube-apiserver calls webhooks over https://")
    if (tls_dir is None) == (ca_file is None):
        raise UsageError("give one of --tls-dir DIR and --ca-file FILE (the caBundle)")
    loaded = _policies(policy)
    if ca_file is not None:
        try:
            ca = Path(ca_file).read_bytes()
        except OSError as e:
            raise UsageError(f"--ca-file {ca_file}: {e.strerror or e}") from None
    else:
        assert tls_dir is not None
        ca = (ensure_tls_dir(tls_dir, _names(service or DEFAULT_SERVICE, san)) / "ca.crt").read_bytes()
    doc = webhook_configuration(
        loaded,
        ca,
        service=service,
        url=url,
        port=port,
        name=name,
        timeout=timeout,
        fail_closed=None if fail_open is None else not fail_open,
    )
    if common.output_format(output) == "json":
        common.json_line(doc)
    else:
        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))


@admission_app.command("review")
def review_cmd(
    path: Annotated[
        str, typer.Argument(help="An AdmissionReview v1 (JSON), or an object (JSON or YAML); '-': stdin.")
    ],
    policy: PolicyOpt = [],  # noqa: B006
    operation: Annotated[str, typer.Option("--operation", help="The operation of a bare object.")] = "CREATE",
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="The namespace of a bare object.")
    ] = None,
    fail_open: FailOpenOpt = None,
    scan_results: ScanResultsOpt = None,
    store_results: StoreResultsOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    signatures: SignaturesOpt = None,
) -> None:
    """Evaluate one request offline and print the AdmissionReview response; exit 1 when denied."""
    from stockade.k8s.admission.review import as_review, parse_review, response

    common.check_choice(operation, "--operation", ("CREATE", "UPDATE", "DELETE", "CONNECT"))
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            doc = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise SourceError(f"{path}: neither JSON nor YAML: {e}") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{path}: not an object")
    body = raw if doc.get("kind") == "AdmissionReview" else as_review(doc, operation, namespace)
    req = parse_review(body)
    engine = _engine(policy, fail_open, scan_results, signatures, 3600, (store_results, db, data_dir))
    d = engine.decide(req)
    out = response(req.uid, d.allowed, message=d.message, code=d.code, warnings=d.warnings, audit=d.audit())
    sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    if not d.allowed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `k8s admission`."""
    k8s_cmd.group(app).add_typer(admission_app, name="admission")
