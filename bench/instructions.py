"""Instructions per request, counted by callgrind: the service's hot paths against the reference app, each
driven in process (ASGI calls, no HTTP server, no load generator) on a seeded PostgreSQL database.

    .venv/bin/python bench/instructions.py [--requests 200] [--keep]

Requests per second on a shared machine drift by a third within minutes; instruction counts repeat to
within 1 % across runs (0.1 % on one database), so that a change of a few per cent shows at once. They count
the app's work only: not uvicorn's HTTP parsing (the same for both apps) and not the database's
(bench/run.py reports that as CPU time). Needs valgrind (Debian: apt-get install valgrind) and PostgreSQL, as bench/run.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# name -> (app, method, path, body); {subject} and {row} are filled per request, from the seeded data.
PATHS: dict[str, tuple[str, str, str, str | None]] = {
    "reference_insert": ("reference", "POST", "/rows", '{{"subject": "{subject}", "payload": "newsletter granted web"}}'),
    "consent_write": ("service", "POST", "/v1/subjects/{subject}/consents",
                      '{{"purpose": "{purpose}", "status": "{status}", "channel": "web"}}'),
    "rights_request": ("service", "POST", "/v1/rights-requests",
                       '{{"type": "{request_type}", "subject_id": "{subject}"}}'),
    "visitor_write": ("service", "POST", "/v1/visitor-consents",
                      '{{"choices": {{"preferences": true, "analytics": true, "marketing": false}}, "language": "sv", '
                      '"page_url": "https://www.wesafe.se/tjanster"}}'),
    "reference_read": ("reference", "GET", "/rows/{row}", None),
    "visitor_read": ("service", "GET", "/v1/visitor-consents/{visitor}", None),
    "decision": ("service", "POST", "/v1/decisions", '{{"subject_id": "{subject}", "purpose": "{purpose}"}}'),
    "decision_batch": ("service", "POST", "/v1/decisions/batch", '{{"items": [{batch}]}}'),
    "marketing_check": ("service", "POST", "/v1/marketing/check", '{{"contacts": [{batch}]}}'),
}
PAIRS = (("consent_write", "reference_insert"), ("rights_request", "reference_insert"), ("visitor_write", "reference_insert"),
         ("decision", "reference_read"), ("visitor_read", "reference_read"))
# Batch paths: BATCH answers per request, counted over a tenth as many requests.
BATCHES = ("decision_batch", "marketing_check")
BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--requests", type=int, default=200, help="counted requests per path (after a warm-up)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="only these paths")
    parser.add_argument("--drive", choices=PATHS, help=argparse.SUPPRESS)  # the child, under valgrind
    args = parser.parse_args()
    if args.drive:
        asyncio.run(drive(args.drive, args.requests))
        return

    from bench import run

    run.RESULTS.mkdir(exist_ok=True)
    database = f"privacy_instructions_{datetime.now():%Y%m%d%H%M%S}"
    url = f"{args.server}/{database}"
    asyncio.run(run.sql(args.server, f'CREATE DATABASE "{database}"'))
    try:
        env = run.prepare(url)
        counts = {name: count(name, args.requests // 10 if name in BATCHES else args.requests, env)
                  for name in args.paths}
        report(counts, args.requests)
    finally:
        if not args.keep:
            asyncio.run(run.sql(args.server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def count(name: str, requests: int, env: dict[str, str]) -> float:
    """Instructions per request of one path, in a child process under callgrind."""
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null",
               sys.executable, str(Path(__file__)), "--drive", name, "--requests", str(requests)]
    finished = subprocess.run(command, env=env | {"PYTHONHASHSEED": "0"}, cwd=ROOT, capture_output=True, text=True,
                              check=False)
    collected = re.search(r"Collected : (\d+)", finished.stderr)
    if finished.returncode or collected is None:
        raise SystemExit(f"{name}: callgrind run failed:\n{finished.stderr[-2000:]}")
    per_request = int(collected.group(1)) / requests
    print(f"{name}: {per_request:,.0f} instructions per request", file=sys.stderr, flush=True)
    return per_request


async def drive(name: str, requests: int) -> None:
    """Warm up, then count `requests` requests: callgrind counts only while instrumentation is on."""
    app_name, method, path, body = PATHS[name]
    if app_name == "reference":
        from bench.reference_app import app
    else:
        from app.main import create_app
        app = create_app()
    items = {key: Path(os.environ[f"BENCH_{key.upper()}S"]).read_text().split() for key in ("subject", "row", "email", "visitor")}
    headers = [(b"authorization", f"Bearer {os.environ['BENCH_TOKEN']}".encode()),
               (b"content-type", b"application/json")]
    choose = random.Random(1).choice
    purposes, channels = ("newsletter", "marketing", "analytics"), ("email", "sms", "phone", "post")
    # A batch path's items; its batches are made before counting starts (the driver's work, not the app's).
    item = {"decision_batch": lambda: {"subject_id": choose(items["subject"]), "purpose": choose(purposes)},
            "marketing_check": lambda: {"email": choose(items["email"]), "channel": choose(channels)}}.get(name)
    batches = [",".join(json.dumps(item()) for _ in range(BATCH)) for _ in range(10)] if item else [""]

    def values() -> dict[str, str]:
        return {"subject": choose(items["subject"]), "row": choose(items["row"]), "purpose": choose(purposes),
                "visitor": choose(items["visitor"]),
                "status": choose(("granted", "withdrawn")), "batch": choose(batches),
                "request_type": choose(("access", "portability", "rectification", "restriction"))}

    async with app.router.lifespan_context(app):
        for _ in range(6 if name in BATCHES else 60):
            await call(app, method, path, body, headers, values)
        instrument("on")
        for _ in range(requests):
            await call(app, method, path, body, headers, values)
        instrument("off")


def instrument(state: str) -> None:
    subprocess.run(["callgrind_control", "--instr=" + state, str(os.getpid())], check=True, capture_output=True)


async def call(app: Any, method: str, template: str, body_template: str | None, headers: list[tuple[bytes, bytes]],
               values: Callable[[], dict[str, str]]) -> None:
    """One request through the app's ASGI interface, as a server would make it."""
    chosen = values()
    path = template.format(**chosen)
    body = body_template.format(**chosen).encode() if body_template else b""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode()), *headers],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] >= 300:
        raise SystemExit(f"{method} {path}: {sent[0]['status']} {sent[1].get('body', b'')[:300]!r}")


def report(counts: dict[str, float], requests: int) -> None:
    from bench import run

    lines = [(f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: instructions per request (callgrind), after a warm-up, "
              f"in process; {requests} requests per path, {requests // 10} per batch path.")]
    pairs = [(path, reference) for path, reference in PAIRS if path in counts and reference in counts]
    if pairs:
        lines += ["", "| path | instructions per request | reference | reference's / path's |", "|---|---|---|---|"]
        lines += [f"| {path} | {counts[path]:,.0f} | {reference}: {counts[reference]:,.0f} | "
                  f"{counts[reference] / counts[path]:.2f} |" for path, reference in pairs]
    if batches := [path for path in BATCHES if path in counts]:
        lines += ["", f"| batch path ({BATCH} per request) | instructions per request | per answer |", "|---|---|---|"]
        lines += [f"| {path} | {counts[path]:,.0f} | {counts[path] / BATCH:,.0f} |" for path in batches]
    text = "\n".join(lines)
    print(text)
    (run.RESULTS / "instructions.md").write_text(text + "\n")
    (run.RESULTS / "instructions.json").write_text(json.dumps(counts, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
