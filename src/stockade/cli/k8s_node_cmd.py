"""`stockade k8s node` and `stockade k8s exposure` (docs/k8s-node.md).

``node``: the CIS node items of this node (or of the node filesystem under ``--root DIR``): one
line per item with its status (fail, warn, pass, not-applicable), CIS id, title and evidence;
``--output json`` prints one JSON object per item. ``--exit-code N`` exits N when an item fails.
Files that cannot be read as their format are reported as errors (file and line); the run goes on.

``exposure ADDR...``: what can be reached from here without credentials at exactly the addresses
given (``--defaults`` adds the in-cluster API server and the clouds' metadata endpoints), from this
host's network or, with ``--container REF``, from that running container's network. One line
per service probed; ``--exit-code N`` exits N when something is exposed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stockade.cli import common, k8s_cmd
from stockade.errors import UsageError

__all__ = ["exposure", "node", "register"]

ExitCodeOpt = Annotated[
    int,
    typer.Option("--exit-code", min=0, max=255, help="Exit with this code when something fails (default 0)."),
]


def node(
    root: Annotated[str, typer.Option("--root", help="The node's filesystem is under this directory.")] = "/",
    kubelet_flags: Annotated[
        str | None,
        typer.Option(
            "--kubelet-flags", help="Read the kubelet's flags from this file (flags, or a systemd unit)."
        ),
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="List not-applicable items too.")] = False,
    exit_code: ExitCodeOpt = 0,
    output: str | None = common.OutputOpt,
) -> None:
    """CIS node items: kubelet config and flags, file permissions, container runtimes, control plane."""
    import os

    from stockade.k8s.node.reader import NodeFS
    from stockade.k8s.node.run import check_node, summary

    fmt = common.output_format(output)
    if not os.path.isdir(root):
        raise UsageError(f"--root {root}: not a directory")
    fs = NodeFS(root)
    # the flags file is a path on this machine (not under --root)
    flags = NodeFS("/").flags_file(os.path.abspath(kubelet_flags)) if kubelet_flags is not None else None
    results = check_node(fs, flags)
    for problem in fs.problems:
        common.print_error(str(problem))
    shown = [r for r in results if show_all or r.status != "not-applicable"]
    if fmt == "json":
        for r in shown:
            common.json_line(r.as_dict())
    else:
        t = common.listing_table()
        for col in ("STATUS", "CIS", "ID", "SEVERITY", "TITLE", "EVIDENCE"):
            t.add_column(col)
        for r in shown:
            ev = "; ".join(str(e) for e in r.evidence) or "-"
            t.add_row(r.status.upper(), r.cis or "-", r.id, r.severity, r.title, common.truncate(ev, 90))
        common.print_table(t)
        counts = summary(results)
        common.console.print(", ".join(f"{n} {s}" for s, n in counts.items()), markup=False)
    if exit_code and any(r.status == "fail" for r in results):
        raise typer.Exit(exit_code)


def exposure(
    addresses: Annotated[
        list[str] | None,
        typer.Argument(
            help="host, host:port, a URL, or SERVICE=host[:port] (apiserver, kubelet, etcd, ...)."
        ),
    ] = None,
    defaults: Annotated[
        bool,
        typer.Option("--defaults", help="Also probe kubernetes.default.svc:443 and the metadata endpoints."),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.05, help="Seconds per request.")] = 2.0,
    container: Annotated[
        str | None,
        typer.Option("--container", "-c", help="Probe from this container's network (id, prefix or name)."),
    ] = None,
    exit_code: ExitCodeOpt = 0,
    output: str | None = common.OutputOpt,
) -> None:
    """Probe the given addresses as a pod would: API server, kubelet, etcd, dashboards, metadata."""
    from stockade.k8s.exposure import DEFAULT_ADDRESSES, parse_address, probe

    fmt = common.output_format(output)
    wanted = list(addresses or []) + (list(DEFAULT_ADDRESSES) if defaults else [])
    if not wanted:
        raise UsageError("give the addresses to probe (or --defaults)")
    for a in wanted:
        parse_address(a)  # a bad address is a usage error before anything is probed
    netns = None
    if container is not None:
        from stockade.sensor.containers.lookup import find_container

        netns = f"/proc/{find_container(container).init_pid}/ns/net"
    results = probe(wanted, timeout=timeout, netns=netns)
    if fmt == "json":
        for r in results:
            common.json_line(r.as_dict())
    else:
        t = common.listing_table()
        for col in ("STATUS", "SEVERITY", "SERVICE", "URL", "MESSAGE"):
            t.add_column(col)
        for r in results:
            t.add_row(r.status.upper(), r.severity or "-", r.service, r.url, r.message)
        common.print_table(t)
    if exit_code and any(r.status == "exposed" for r in results):
        raise typer.Exit(exit_code)


def register(app: typer.Typer) -> None:
    """Add `k8s node` and `k8s exposure`."""
    g = k8s_cmd.group(app)
    g.command("node")(node)
    g.command("exposure")(exposure)
