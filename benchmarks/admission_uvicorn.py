"""The admission engine behind uvicorn + starlette: the alternative server stack measured against
the standard library's (docs/performance.md, "The admission webhook"). Not shipped.

    .venv/bin/python benchmarks/admission_uvicorn.py PORT CERT KEY
    .venv/bin/python benchmarks/admission_latency.py --url https://127.0.0.1:PORT --ca CA

Same policy as admission_latency.py's server, same engine, the same audit line per decision.
"""

from __future__ import annotations

import sys
import time

import harness  # noqa: F401 - puts the checkout's src on the path
import orjson
import uvicorn
from admission_latency import POLICY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from stockade.k8s.admission.engine import Engine
from stockade.k8s.admission.load import parse_admission_policies
from stockade.k8s.admission.review import ReviewError, parse_review, response
from stockade.k8s.admission.server import AuditLog

ENGINE = Engine(parse_admission_policies(POLICY, "bench.yaml"))
AUDIT = AuditLog(open("/dev/null", "ab"))  # noqa: SIM115 - lives as long as the process


async def validate(request: Request) -> Response:
    started = time.perf_counter()
    try:
        req = parse_review(await request.body())
    except ReviewError as e:
        return Response(orjson.dumps({"error": str(e)}), 400, media_type="application/json")
    d = ENGINE.decide(req)
    if d.matched and not req.dry_run:
        AUDIT.write(req, d, started)
    doc = response(req.uid, d.allowed, message=d.message, code=d.code, warnings=d.warnings, audit=d.audit())
    return Response(orjson.dumps(doc), media_type="application/json")


async def healthz(_request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/validate", validate, methods=["POST"]), Route("/healthz", healthz)])

if __name__ == "__main__":
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key, log_level="warning")
