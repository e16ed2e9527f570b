"""Hot-path benchmark: the service against a reference app on the same stack, both with 2 uvicorn workers
on PostgreSQL, loaded by wrk in the same run. Prints ratios against the reference; writes bench/results/.

    .venv/bin/python bench/run.py [--duration 15] [--events 10000000] [--keep]

Needs wrk (Debian: apt-get install wrk) and a PostgreSQL server (default 127.0.0.1:5432, user postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from app.core.config import Settings
from app.core.crypto import ContactHasher
from app.core.security import mint_token

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SERVICE_PORT, REFERENCE_PORT = 8100, 8101
SUBJECTS = 10_000
REFERENCE_ROWS = 10_000
VISITORS = 10_000


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- database ----------------------------------------------------------------------------------------------


async def sql(server: str, statement: str) -> None:
    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def seed(url: str, hasher: ContactHasher) -> tuple[list[str], list[str], list[str], list[str]]:
    """Subjects with consent history and state, their contacts, the reference table's rows, and website
    visitors."""
    connection = await asyncpg.connect(url)
    now = datetime.now(UTC)
    subjects, emails, events, states, contacts = [], [], [], [], []
    for n in range(SUBJECTS):
        sid = uuid.uuid4()
        email = f"bench{n}@example.se"
        subjects.append((sid, email, hasher.email(email), f"Bench {n}", "active", now, now))
        contacts.append((hasher.email(email), sid, "email"))
        emails.append(email)
        for purpose in ("newsletter", "marketing"):
            status = "granted" if n % 3 else "withdrawn"
            eid = uuid.uuid4()
            events.append((eid, sid, purpose, status, "web", "explicit", "2026-11", now, now, "bench", "seeded"))
            states.append((sid, purpose, status, now, now, "2026-11", eid))
    await connection.copy_records_to_table("subject", records=subjects, columns=[
        "id", "email", "email_hash", "name", "status", "created_at", "updated_at"])
    await connection.copy_records_to_table("subject_contact", records=contacts, columns=[
        "contact_hash", "subject_id", "kind"])
    await connection.copy_records_to_table("consent_event", records=events, columns=[
        "id", "subject_id", "purpose", "status", "channel", "method", "policy_version", "occurred_at", "recorded_at",
        "recorded_by", "receipt"])
    await connection.copy_records_to_table("consent_state", records=states, columns=[
        "subject_id", "purpose", "status", "occurred_at", "recorded_at", "policy_version", "event_id"])
    # As registration through the API would have: every subject's audit chain is started.
    await connection.copy_records_to_table("audit_chain_head", records=[(str(s[0]), 0, "0" * 64) for s in subjects],
                                           columns=["chain", "seq", "hash"])
    await connection.execute("CREATE TABLE bench_reference_row (id uuid PRIMARY KEY, subject varchar NOT NULL, "
                             "payload varchar NOT NULL, created_at timestamptz NOT NULL)")
    rows = [(uuid.uuid4(), "bench", "seeded", now) for _ in range(REFERENCE_ROWS)]
    await connection.copy_records_to_table("bench_reference_row", records=rows)
    # Website visitors who chose before (what the banner's GET reads), each with its event.
    await connection.execute(f"""
        WITH notice AS (SELECT version FROM policy_version ORDER BY effective_from DESC LIMIT 1),
        visitor_rows AS (
            INSERT INTO visitor (id, subject_id, choices, gpc, method, notice_version, language, event_id,
                                 recorded_at, expires_at, created_at)
            SELECT 'bench' || lpad(g::text, 17, '0'), NULL,
                   '{{"necessary":true,"preferences":false,"analytics":true,"marketing":false}}'::jsonb, false,
                   'explicit', notice.version, 'sv', gen_random_uuid(), now(), now() + interval '12 months', now()
            FROM generate_series(1, {VISITORS}) AS g, notice
            RETURNING id, choices, notice_version, event_id, recorded_at, expires_at)
        INSERT INTO visitor_consent_event (id, visitor_id, choices, gpc, method, notice_version, language,
                                           recorded_at, expires_at, receipt)
        SELECT event_id, id, choices, false, 'explicit', notice_version, 'sv', recorded_at, expires_at, 'seeded'
        FROM visitor_rows""")
    visitors = [row["id"] for row in await connection.fetch("SELECT id FROM visitor")]
    await connection.execute("ANALYZE")
    await connection.close()
    return [str(s[0]) for s in subjects], emails, [str(r[0]) for r in rows], visitors


async def grow_history(url: str, total: int) -> float:
    """Bulk history: consent events for the same subjects (generated in the server), up to `total`."""
    connection = await asyncpg.connect(url)
    started = time.perf_counter()
    have = await connection.fetchval("SELECT count(*) FROM consent_event")
    step = 1_000_000
    while have < total:
        batch = min(step, total - have)
        await connection.execute(f"""
            INSERT INTO consent_event (id, subject_id, purpose, status, channel, method, policy_version,
                                       occurred_at, recorded_at, recorded_by, receipt)
            SELECT gen_random_uuid(), s.ids[1 + g % s.n], (ARRAY['newsletter','marketing','analytics'])[1 + g % 3],
                   CASE WHEN g % 2 = 0 THEN 'granted' ELSE 'withdrawn' END, 'web', 'explicit', '2026-11',
                   now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval, 'bench', 'seeded'
            FROM generate_series({have + 1}, {have + batch}) AS g,
                 (SELECT array_agg(id) AS ids, count(*) AS n FROM subject) AS s""")
        have += batch
        log(f"  history: {have:,} events")
    await connection.execute("ANALYZE consent_event")
    await connection.close()
    return time.perf_counter() - started


def prepare(url: str) -> dict[str, str]:
    """Migrate and seed the database at `url`: the environment that both apps and the load scripts read."""
    env = {**os.environ, "PRIVACY_DATABASE_URL": url, "PRIVACY_RECEIPT_KEY_FILE": str(RESULTS / "receipt.pem"),
           "BENCH_DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"), "BENCH_LUA": str(BENCH / "lua")}
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, cwd=ROOT)
    settings = Settings(database_url=url)
    subjects, emails, rows, visitors = asyncio.run(
        seed(url, ContactHasher(settings.hash_key.get_secret_value().encode())))
    for name, items in (("subjects", subjects), ("emails", emails), ("rows", rows), ("visitors", visitors)):
        (RESULTS / f"{name}.txt").write_text("\n".join(items) + "\n")
    token = mint_token(settings, role="staff", sub="bench", scopes=["consents:read", "consents:write", "requests:manage"],
                       ttl_seconds=24 * 3600)
    return env | {"BENCH_TOKEN": token, "BENCH_SUBJECTS": str(RESULTS / "subjects.txt"),
                  "BENCH_EMAILS": str(RESULTS / "emails.txt"), "BENCH_ROWS": str(RESULTS / "rows.txt"),
                  "BENCH_VISITORS": str(RESULTS / "visitors.txt"),
                  # wrk sends everything from one address: the per-address limit would measure 429s.
                  "PRIVACY_VISITOR_CONSENT_RATE_LIMIT": "100000000/second"}


# --- processes and load ------------------------------------------------------------------------------------


def start(command: list[str], env: dict[str, str], port: int, name: str, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    """Start an app and wait until it answers. `cwd`: the checkout it runs from (`python -m` imports from there
    first, before PYTHONPATH)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is taken (an earlier run still going?); {name} cannot start")
    logfile = open(RESULTS / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(command, env=env, stdout=logfile, stderr=subprocess.STDOUT, cwd=cwd,
                               start_new_session=True)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{name} did not start; see {RESULTS / name}.log")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, script: str, env: dict[str, str], duration: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
               str(BENCH / "lua" / script), f"http://127.0.0.1:{port}"]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), "errors": 0.0,
              "requests": float(re.search(r"(\d+) requests in", output).group(1))}
    for pct in ("50", "99"):
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
        result[f"p{pct}_ms"] = float(value) * _UNITS[unit]
    if bad := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        result["errors"] = float(bad.group(1))
    if socket_errors := re.search(r"Socket errors: (.*)", output):
        result["socket_errors"] = socket_errors.group(1)  # type: ignore[assignment]
    return result


def cpu_ticks(group: int) -> tuple[int, int]:
    """CPU time (user + system, in clock ticks) of the processes in a process group (the app and its workers),
    and of every PostgreSQL process (its backends do the queries). Linux /proc."""
    app = database = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        comm, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])
        if int(fields[2]) == group:
            app += ticks
        elif comm == "postgres":
            database += ticks
    return app, database


def measure(name: str, port: int, script: str, env: dict[str, str], args: argparse.Namespace,
            connections: int = 32, group: int | None = None) -> dict[str, float]:
    wrk(port, script, env, max(2, args.duration // 5), connections)  # warm-up: pools, caches, JIT-less Python
    before = cpu_ticks(group) if group else (0, 0)
    result = wrk(port, script, env, args.duration, connections)
    if group:
        after, per_tick = cpu_ticks(group), 1e6 / os.sysconf("SC_CLK_TCK")
        result["app_cpu_us"] = (after[0] - before[0]) * per_tick / result["requests"]
        result["db_cpu_us"] = (after[1] - before[1]) * per_tick / result["requests"]
    log(f"{name}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
        + (f", CPU per request: app {result['app_cpu_us']:.0f} µs, database {result['db_cpu_us']:.0f} µs"
           if group else "")
        + (f", {result['errors']:.0f} non-2xx" if result["errors"] else ""))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (after a warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of reference and service")
    parser.add_argument("--events", type=int, default=10_000_000, help="history size for the flat-latency check")
    parser.add_argument("--batch", type=int, default=1000, help="items per batch request")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")

    RESULTS.mkdir(exist_ok=True)
    database = f"privacy_bench_{datetime.now():%Y%m%d%H%M%S}"
    url = f"{args.server}/{database}"
    asyncio.run(sql(args.server, f'CREATE DATABASE "{database}"'))
    log(f"database {database}")
    service = reference = None
    try:
        env = prepare(url) | {"BENCH_BATCH": str(args.batch)}
        reference = start([sys.executable, "-m", "uvicorn", "bench.reference_app:app", "--port", str(REFERENCE_PORT),
                           "--workers", "2", "--no-access-log", "--log-level", "warning"], env, REFERENCE_PORT,
                          "reference")
        service = start([sys.executable, "-m", "app.cli", "serve", "--no-migrate", "--port", str(SERVICE_PORT),
                         "--workers", "2"], env, SERVICE_PORT, "service")

        r: dict[str, dict[str, float]] = {}
        # Reference and service alternate, round after round, so that both see the same machine.
        for _ in range(args.rounds):
            add(r, "reference_insert", measure("reference insert", REFERENCE_PORT, "reference_insert.lua", env, args,
                                               group=reference.pid))
            add(r, "consent_write", measure("consent write", SERVICE_PORT, "consent_write.lua", env, args,
                                            group=service.pid))
            add(r, "rights_request", measure("rights-request creation", SERVICE_PORT, "rights_request.lua", env, args,
                                             group=service.pid))
            add(r, "visitor_write", measure("visitor-consent write", SERVICE_PORT, "visitor_write.lua", env, args,
                                            group=service.pid))
            add(r, "reference_read", measure("reference pk read", REFERENCE_PORT, "reference_read.lua", env, args,
                                             group=reference.pid))
            add(r, "decision", measure("decision", SERVICE_PORT, "decision.lua", env, args, group=service.pid))
            add(r, "visitor_read", measure("visitor-consent read", SERVICE_PORT, "visitor_read.lua", env, args,
                                           group=service.pid))
            add(r, "decision_batch", measure("decision batch", SERVICE_PORT, "decision_batch.lua", env, args, 4))
            add(r, "marketing_check", measure("marketing check", SERVICE_PORT, "marketing_check.lua", env, args, 4))
        events_before = asyncio.run(count_events(url))
        add(r, "decision_small_history", measure(f"decision, {events_before:,} events", SERVICE_PORT,
                                                 "decision.lua", env, args, connections=8))
        seeded_in = asyncio.run(grow_history(url, args.events))
        events_after = asyncio.run(count_events(url))
        add(r, "decision_large_history", measure(f"decision, {events_after:,} events", SERVICE_PORT,
                                                 "decision.lua", env, args, connections=8))
        report(r, args, events_before, events_after, seeded_in)
    finally:
        for process in (service, reference):
            if process is not None:
                stop(process)
        if not args.keep:
            asyncio.run(sql(args.server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def add(results: dict[str, dict[str, float]], name: str, result: dict[str, float]) -> None:
    """Collect one measurement; the report takes medians over the rounds."""
    entry = results.setdefault(name, {"runs": []})  # type: ignore[dict-item]
    entry["runs"].append(result)  # type: ignore[union-attr]
    for key in ("rps", "p50_ms", "p99_ms", "errors", "app_cpu_us", "db_cpu_us"):
        if key not in result:
            continue
        values = sorted(run[key] for run in entry["runs"])  # type: ignore[union-attr]
        entry[key] = values[len(values) // 2] if key != "errors" else sum(values)


async def count_events(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval("SELECT count(*) FROM consent_event")
    finally:
        await connection.close()


def report(r: dict[str, dict[str, float]], args: argparse.Namespace, before: int, after: int, seeded_in: float) -> None:
    batch = args.batch

    def paired(service: str, reference: str) -> tuple[float, str]:
        """Median of the per-round ratios, and their range."""
        ratios = sorted(s["rps"] / f["rps"] for s, f in zip(r[service]["runs"], r[reference]["runs"], strict=True))
        return ratios[len(ratios) // 2], f"{ratios[0]:.2f}–{ratios[-1]:.2f}"

    write_ratio, write_range = paired("consent_write", "reference_insert")
    filing_ratio, filing_range = paired("rights_request", "reference_insert")
    decision_ratio, decision_range = paired("decision", "reference_read")
    visitor_ratio, visitor_range = paired("visitor_write", "reference_insert")
    visitor_read_ratio, visitor_read_range = paired("visitor_read", "reference_read")
    rows = [
        ("consent write (POST .../consents)", f"{r['consent_write']['rps']:.0f} req/s (rounds: {write_range})",
         write_ratio, "≥ 0.75 × reference insert"),
        ("rights-request creation (POST /v1/rights-requests)",
         f"{r['rights_request']['rps']:.0f} req/s (rounds: {filing_range})", filing_ratio, "≥ 0.6 × reference insert"),
        ("visitor-consent write (POST /v1/visitor-consents)",
         f"{r['visitor_write']['rps']:.0f} req/s (rounds: {visitor_range})", visitor_ratio, "≥ 0.9 × reference insert"),
        ("visitor-consent read (GET /v1/visitor-consents/{id})",
         f"{r['visitor_read']['rps']:.0f} req/s (rounds: {visitor_read_range})", visitor_read_ratio,
         "≥ 0.8 × reference pk read"),
        ("single decision (POST /v1/decisions)", f"{r['decision']['rps']:.0f} req/s (rounds: {decision_range})",
         decision_ratio, "≥ 0.8 × reference pk read"),
        (f"batch decisions ({batch}/request)", f"{r['decision_batch']['rps'] * batch:,.0f} answers/s",
         r["decision_batch"]["rps"] * batch / 50_000, "≥ 50,000 answers/s"),
        (f"batch marketing check ({batch}/request)", f"{r['marketing_check']['rps'] * batch:,.0f} answers/s",
         r["marketing_check"]["rps"] * batch / 50_000, "≥ 50,000 answers/s"),
        (f"decision p50, {after:,} vs {before:,} events",
         f"{r['decision_large_history']['p50_ms']:.2f} vs {r['decision_small_history']['p50_ms']:.2f} ms",
         r["decision_large_history"]["p50_ms"] / r["decision_small_history"]["p50_ms"], "≤ 1.2"),
    ]
    lines = [(f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {args.rounds} rounds of "
              f"{args.duration}s per measurement (medians); "
              f"reference: insert {r['reference_insert']['rps']:.0f} req/s, pk read {r['reference_read']['rps']:.0f} "
              f"req/s; history of {after:,} events seeded in {seeded_in:.0f}s."), "",
             "| path | measured | ratio | target |", "|---|---|---|---|"]
    lines += [f"| {name} | {measured} | {ratio:.2f} | {target} |" for name, measured, ratio, target in rows]
    lines += ["", "CPU per request (medians; user + system time of the app's processes, and of PostgreSQL's):", "",
              "| path | app | database | total |", "|---|---|---|---|"]
    lines += [f"| {label} | {r[key]['app_cpu_us']:.0f} µs | {r[key]['db_cpu_us']:.0f} µs | "
              f"{r[key]['app_cpu_us'] + r[key]['db_cpu_us']:.0f} µs |"
              for key, label in (("reference_insert", "reference insert"), ("consent_write", "consent write"),
                                 ("rights_request", "rights-request creation"),
                                 ("visitor_write", "visitor-consent write"), ("visitor_read", "visitor-consent read"),
                                 ("reference_read", "reference pk read"), ("decision", "single decision"))]
    errors = {k: v["errors"] for k, v in r.items() if v["errors"]}
    if errors:
        lines += ["", f"Non-2xx responses: {errors}"]
    text = "\n".join(lines)
    print(text)
    (RESULTS / "latest.md").write_text(text + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
