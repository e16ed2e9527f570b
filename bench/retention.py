"""Retention sweep benchmark: seed subjects and ten items each on PostgreSQL (in bulk, inside the server), age
them, and run `privacy retention run` as its own process. Reports items per second and the sweep's peak memory
for each size, so that one can see time grow linearly and memory stay flat.

    .venv/bin/python bench/retention.py [--sizes 100000 1000000] [--batch-size 1000] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg


ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# Ten items per subject: purposes and categories as WeSafe's catalog has them, collected over three years.
# (purpose, category, days ago it was collected: a spread modulo this many days)
ITEMS = [
    ("service", "phone", 1000), ("service", "address", 1000), ("billing", "payment", 3000),
    ("billing", "address", 3000), ("customer_support", "user_content", 1100), ("analytics", "username", 900),
    ("analytics", "ip_address", 400), ("newsletter", "email", 900), ("marketing", "phone", 900),
    ("service", "title", 1000),
]


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def seed(url: str, subjects: int) -> float:
    """Subjects (40 % whose relationship ended two years ago), their audit chains, ten items each, and newsletter
    consents (half withdrawn long ago). Deterministic ids: md5 of the number, as a UUID."""
    started = time.perf_counter()
    await execute(
        url,
        f"""INSERT INTO subject (id, email, email_hash, name, status, created_at, updated_at, relationship_ended_at)
            SELECT md5('s' || g)::uuid, 'bench' || g || '@example.se', md5('e' || g) || md5('f' || g),
                   'Bench ' || g, 'active', now() - interval '3 years', now(),
                   CASE WHEN g % 10 < 4 THEN now() - interval '2 years' END
            FROM generate_series(1, {subjects}) AS g""",
        f"""INSERT INTO audit_chain_head (chain, seq, hash)
            SELECT md5('s' || g)::uuid::text, 0, repeat('0', 64) FROM generate_series(1, {subjects}) AS g""",
    )
    log(f"  {subjects:,} subjects")
    for n, (purpose, category, spread) in enumerate(ITEMS):
        # Every tenth subject whose relationship ended has no billing records: nothing will be left of it.
        skip = "WHERE g % 10 <> 0" if purpose == "billing" else ""
        await execute(url, f"""
            INSERT INTO personal_data_item (id, subject_id, category, source, purpose, value, collected_at,
                                            updated_at)
            SELECT md5('i{n}-' || g)::uuid, md5('s' || g)::uuid, '{category}', 'direct', '{purpose}',
                   'value ' || g, now() - ((g * 7 + {n * 13}) % {spread}) * interval '1 day', now()
            FROM generate_series(1, {subjects}) AS g {skip}""")
    await execute(url, f"""
        INSERT INTO consent_state (subject_id, purpose, status, occurred_at, recorded_at, policy_version, event_id)
        SELECT md5('s' || g)::uuid, 'newsletter', CASE WHEN g % 2 = 0 THEN 'granted' ELSE 'withdrawn' END,
               now() - interval '400 days', now() - interval '400 days', '2026-11', md5('c' || g)::uuid
        FROM generate_series(1, {subjects}) AS g""", "ANALYZE")
    return time.perf_counter() - started


def sweep(env: dict[str, str], batch_size: int) -> tuple[float, float, dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "app.cli", "retention", "run", "--batch-size", str(batch_size)],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    peak = float(re.search(r"peak memory: (\d+) MB", done.stderr).group(1))
    return elapsed, peak, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    rows = []
    for size in args.sizes:
        database = f"privacy_retention_{size}_{datetime.now():%H%M%S}"
        url = f"{args.server}/{database}"
        asyncio.run(execute(f"{args.server}/postgres", f'CREATE DATABASE "{database}"'))
        try:
            env = {**os.environ, "PRIVACY_DATABASE_URL": url, "PRIVACY_LOG_LEVEL": "WARNING",
                   "PRIVACY_RECEIPT_KEY_FILE": str(RESULTS / "receipt.pem")}
            subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, cwd=ROOT, check=True,
                           capture_output=True)
            log(f"seeding {size:,} subjects and {size * len(ITEMS):,} items")
            seeded_in = asyncio.run(seed(url, size))
            log(f"  seeded in {seeded_in:.0f}s; sweeping")
            elapsed, peak, outcome = sweep(env, args.batch_size)
            items = outcome["items_scanned"]
            report = outcome["report"]
            acted = sum(a["count"] for a in report["actions"])
            log(f"  {items:,} items in {elapsed:.0f}s: {items / elapsed:,.0f} items/s, peak {peak:.0f} MB, "
                f"{acted:,} deleted or anonymized, {report['subjects'].get('anonymized', 0):,} subjects anonymized")
            rows.append({"subjects": size, "items": items, "seconds": elapsed, "items_per_second": items / elapsed,
                         "peak_mb": peak, "acted": acted, "subjects_anonymized": report["subjects"].get("anonymized", 0),
                         "seeded_seconds": seeded_in})
        finally:
            if not args.keep:
                asyncio.run(execute(f"{args.server}/postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    lines = [f"Retention sweep, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, batch size "
             f"{args.batch_size}.", "", "| subjects | items | sweep | items/s | peak memory | deleted or anonymized |"
             " subjects anonymized |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['subjects']:,} | {r['items']:,} | {r['seconds']:.0f} s | {r['items_per_second']:,.0f} | "
              f"{r['peak_mb']:.0f} MB | {r['acted']:,} | {r['subjects_anonymized']:,} |" for r in rows]
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        lines += ["", f"From {first['subjects']:,} to {last['subjects']:,} subjects ({last['subjects'] / first['subjects']:.0f}×): "
                      f"time {last['seconds'] / first['seconds']:.1f}×, items/s {last['items_per_second'] / first['items_per_second']:.2f}×, "
                      f"peak memory {last['peak_mb'] / first['peak_mb']:.2f}×."]
    text = "\n".join(lines)
    print(text)
    (RESULTS / "retention.md").write_text(text + "\n")
    (RESULTS / "retention.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
