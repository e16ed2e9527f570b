"""The image and compose.yaml, tested the way they run but without a Docker engine (there is none here): the
Dockerfile's entrypoint and environment run as subprocesses, with the settings compose.yaml gives them, on a
fresh database. Also: the migration lock, the metrics folder of several workers, trusted proxies."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app import cli
from app.core import migrate
from app.core.config import DEV_AUDIT_KEYS, DEV_ENCRYPTION_KEYS, Settings
from app.core.db import async_url
from app.core.security import mint_token
from tests.processes import (
    REPO,
    clean_environment,
    dockerfile,
    fresh_postgres_database,
    postgres_server,
    run,
    start,
    write_receipt_key,
)
from tests.support import PRODUCTION_KEYS, free_port

IMAGE = dockerfile()
COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())
NEEDS_POSTGRES = pytest.mark.skipif(
    postgres_server() is None,
    reason="needs PostgreSQL: runs when TEST_DATABASE_URL names a PostgreSQL server",
)

# What an operator puts in .env for compose.yaml (docs/operations.md#docker-compose).
DOT_ENV = {
    "POSTGRES_PASSWORD": "c0mp0se-db-password",
    # Generated as the documentation says (production refuses weak keys: core.keystrength).
    "PRIVACY_JWT_SECRET": PRODUCTION_KEYS["jwt_secret"],
    "PRIVACY_ENCRYPTION_KEYS": PRODUCTION_KEYS["encryption_keys"],
    "PRIVACY_HASH_KEY": PRODUCTION_KEYS["hash_key"],
    "PRIVACY_AUDIT_KEYS": PRODUCTION_KEYS["audit_keys"],
    "PRIVACY_PUBLIC_BASE_URL": "https://privacy.wesafe.example",
    "PRIVACY_SMTP_HOST": "smtp.wesafe.example",
}


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}; a missing required variable raises KeyError."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
        if variables.get(name):
            return variables[name]
        if operator == ":?":
            raise KeyError(argument)
        return argument if operator == ":-" else ""

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value)


def service_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    return {
        key: interpolate(str(value), variables)
        for key, value in COMPOSE["services"][service]["environment"].items()
    }


def container(tmp_path: Path, service: str = "api", **overrides: str) -> tuple[dict[str, str], Path]:
    """The environment a compose service's container runs with, and its working directory (the image's
    WORKDIR, /var/lib/privacy, here a fresh folder). The receipt key is a file like the compose secret."""
    home = tmp_path / f"{service}-{len(list(tmp_path.iterdir()))}"
    home.mkdir()
    environment = service_environment(service, DOT_ENV)
    environment["PRIVACY_RECEIPT_KEY_FILE"] = str(write_receipt_key(home / "receipt-key"))
    return clean_environment(**(IMAGE.env | environment | overrides)), home


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


# --- the image's settings -----------------------------------------------------------------------------------


def test_the_image_runs_its_entrypoint_in_production():
    assert IMAGE.env["PRIVACY_ENV"] == "production"
    assert IMAGE.cmd == ["serve"] and IMAGE.env["PRIVACY_PORT"] == "8000"
    entrypoint = Path(IMAGE.command()[0])
    assert entrypoint.is_file() and os.access(entrypoint, os.X_OK), entrypoint


def test_the_container_alone_refuses_to_start_and_says_what_is_missing(tmp_path):
    """`docker run wesafe-privacy` with nothing set: every problem named at once, before anything starts."""
    message = refusal(run(IMAGE.command(), clean_environment(**IMAGE.env), tmp_path))
    for named in (
        "PRIVACY_JWT_SECRET",
        "SQLite",
        "PRIVACY_ENCRYPTION_KEYS",
        "PRIVACY_HASH_KEY",
        "PRIVACY_MAIL_BACKEND",
        "PRIVACY_RECEIPT_KEY_FILE",
        "PRIVACY_PUBLIC_BASE_URL",
    ):
        assert named in message, (named, message)
    assert message.startswith("privacy: refusing to start in production")
    assert not (tmp_path / "privacy.db").exists() and not (tmp_path / "privacy-receipt-key.pem").exists()


def test_the_old_readme_example_is_refused_for_exactly_what_it_lacked(tmp_path):
    """The README's former `docker run`: no mail backend, no receipt key, no public base URL."""
    env = clean_environment(
        **IMAGE.env,
        PRIVACY_DATABASE_URL="postgresql://privacy:secret@db.internal:5432/privacy",
        PRIVACY_JWT_SECRET=DOT_ENV["PRIVACY_JWT_SECRET"],
        PRIVACY_ENCRYPTION_KEYS=DOT_ENV["PRIVACY_ENCRYPTION_KEYS"],
        PRIVACY_HASH_KEY=DOT_ENV["PRIVACY_HASH_KEY"],
        PRIVACY_AUDIT_KEYS=DOT_ENV["PRIVACY_AUDIT_KEYS"],
    )
    message = refusal(run(IMAGE.command(), env, tmp_path))
    named = set(re.findall(r"PRIVACY_[A-Z_]+|SQLite", message))
    assert named == {"PRIVACY_MAIL_BACKEND", "PRIVACY_RECEIPT_KEY_FILE", "PRIVACY_PUBLIC_BASE_URL"}, message


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            {"PRIVACY_RECEIPT_KEY_FILE": "/nonexistent/receipt-key.pem"},
            "PRIVACY_RECEIPT_KEY_FILE: /nonexistent",
        ),
        (
            {"PRIVACY_PUBLIC_BASE_URL": "http://privacy.wesafe.example"},
            "PRIVACY_PUBLIC_BASE_URL must be an https://",
        ),
        (
            {"PRIVACY_PUBLIC_BASE_URL": "privacy.wesafe.example"},
            "PRIVACY_PUBLIC_BASE_URL: 'privacy.wesafe.example'",
        ),
        ({"PRIVACY_FORWARDED_ALLOW_IPS": "the-proxy"}, "PRIVACY_FORWARDED_ALLOW_IPS"),
        ({"PRIVACY_JWT_SECRET": "short"}, "PRIVACY_JWT_SECRET is shorter than 32 bytes"),
        ({"PRIVACY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true"}, "PRIVACY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"),
        ({"PRIVACY_ENCRYPTION_KEYS": "k1:c2hvcnQ="}, "PRIVACY_ENCRYPTION_KEYS: key 'k1' must be 32 bytes"),
        # Weak keys (issue 17, item 10), given to the container; tests/test_key_strength.py sweeps them.
        ({"PRIVACY_JWT_SECRET": "a" * 32}, "PRIVACY_JWT_SECRET is one byte repeated"),
        ({"PRIVACY_HASH_KEY": "a"}, "PRIVACY_HASH_KEY is shorter than 32 bytes"),
        (
            {
                "PRIVACY_ENCRYPTION_KEYS": DOT_ENV["PRIVACY_ENCRYPTION_KEYS"]
                + ",dev:"
                + DEV_ENCRYPTION_KEYS.split(":")[1]
            },
            "PRIVACY_ENCRYPTION_KEYS: key 'dev' is a development key",
        ),
        (
            {"PRIVACY_ENCRYPTION_KEYS": "k9:" + DEV_ENCRYPTION_KEYS.split(":")[1]},
            "PRIVACY_ENCRYPTION_KEYS: key 'k9' is a development key",
        ),
        (
            {"PRIVACY_AUDIT_KEYS": "a1:" + DEV_AUDIT_KEYS.split(":")[1]},
            "PRIVACY_AUDIT_KEYS: key 'a1' is a development key",
        ),
        (
            {"PRIVACY_HASH_KEY": DOT_ENV["PRIVACY_JWT_SECRET"]},
            "PRIVACY_HASH_KEY is the same key as PRIVACY_JWT_SECRET",
        ),
        ({"PRIVACY_PORT": "http"}, "invalid int value: 'http'"),
    ],
)
def test_each_bad_production_setting_is_refused_by_name(tmp_path, override, named):
    env, home = container(tmp_path, **override)
    assert named in refusal(run(IMAGE.command(), env, home))


def test_check_says_a_good_configuration_is_usable_without_starting_anything(tmp_path):
    env, home = container(tmp_path)
    result = run(IMAGE.command("check"), env, home)
    assert result.returncode == 0, result.stderr
    assert (
        "the configuration is usable (production; database postgresql://privacy:***@db:5432/privacy"
        in result.stdout
    )


# --- compose.yaml -------------------------------------------------------------------------------------------


def test_every_compose_service_runs_a_privacy_command_the_entrypoint_hands_on():
    """A service's command must reach `privacy` (not `exec` as a program of its own) and parse there."""
    entrypoint = (REPO / "docker/entrypoint.sh").read_text()
    handed_on = re.search(r"^\s*(serve \|[^)]*)\)", entrypoint, re.M)
    assert handed_on is not None
    commands = {word.strip() for word in handed_on.group(1).split("|")}
    for name, service in COMPOSE["services"].items():
        if service.get("image") != "wesafe-privacy":
            continue
        assert service["command"][0] in commands, name
        # Compose's defaults (${VAR:-default}) filled in; argparse exits (SystemExit) on what it cannot parse.
        cli.build_parser().parse_args([re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", a) for a in service["command"]])


def test_compose_file_follows_the_compose_specification():
    schema = json.loads((REPO / "tests/vendor/compose-spec.json").read_text())
    errors = [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}"
        for e in jsonschema_rs.Draft7Validator(schema).iter_errors(COMPOSE)
    ]
    assert errors == []


def test_compose_runs_the_api_the_worker_the_schedules_and_postgresql():
    services = COMPOSE["services"]
    assert set(services) == {"api", "worker", "retention", "notices", "audit-checkpoint", "db"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["api"]["command"] == ["serve"] and services["worker"]["command"] == ["worker"]
    assert services["retention"]["command"][:2] == ["retention", "schedule"]
    assert services["audit-checkpoint"]["command"] == ["audit", "checkpoint", "--every", "3600"]
    assert services["notices"]["command"] == ["notices", "mail", "--every", "3600"]
    # The checkpoint log lives in a volume of its own, which the database's container never mounts.
    log_volume = services["audit-checkpoint"]["volumes"][0].split(":")[0]
    assert log_volume in COMPOSE["volumes"] and not any(
        v.startswith(f"{log_volume}:") for v in services["db"].get("volumes", [])
    )
    assert {services[s]["image"] for s in ("api", "worker", "retention", "notices", "audit-checkpoint")} == {"wesafe-privacy"}
    # The worker and the sweep start once the API has migrated (it is healthy only after serve migrated).
    for service in ("worker", "retention", "notices", "audit-checkpoint"):
        assert services[service]["depends_on"] == {"api": {"condition": "service_healthy"}}
        assert services[service]["healthcheck"] == {
            "disable": True
        }  # the image's probes HTTP, which they lack
    assert services["api"]["depends_on"] == {"db": {"condition": "service_healthy"}}


@pytest.mark.parametrize("service", ["api", "worker", "retention", "notices", "audit-checkpoint"])
def test_composes_settings_pass_productions_checks(tmp_path, service):
    environment = service_environment(service, DOT_ENV)
    assert environment["PRIVACY_DATABASE_URL"] == "postgresql://privacy:c0mp0se-db-password@db:5432/privacy"
    fields = {key.removeprefix("PRIVACY_").lower(): value for key, value in environment.items()}
    fields["receipt_key_file"] = write_receipt_key(tmp_path / "receipt-key")
    assert Settings(**fields).production_problems() == []


def test_compose_refuses_to_run_without_its_secrets():
    with pytest.raises(KeyError, match=r"set PRIVACY_JWT_SECRET in \.env"):
        service_environment("api", {k: v for k, v in DOT_ENV.items() if k != "PRIVACY_JWT_SECRET"})


def _compose_client() -> list[str] | None:
    if (
        shutil.which("docker")
        and run(["docker", "compose", "version"], dict(os.environ), REPO).returncode == 0
    ):
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.skipif(_compose_client() is None, reason="no compose client (apt-get install docker-compose)")
def test_docker_compose_config_accepts_the_file(tmp_path):
    """The compose client's own check (`config` needs no engine); .ci/run installs Debian's docker-compose."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "compose.yaml", project)
    (project / "secrets").mkdir()
    write_receipt_key(project / "secrets/receipt-key.pem")
    client = _compose_client()
    assert client is not None
    result = run([*client, "config", "-q"], {**os.environ, **DOT_ENV}, project)
    assert result.returncode == 0, result.stderr
    missing = run(
        [*client, "config", "-q"], {k: v for k, v in os.environ.items() if k not in DOT_ENV}, project
    )
    assert missing.returncode != 0 and "set POSTGRES_PASSWORD in .env" in missing.stderr + missing.stdout


# --- the containers, started --------------------------------------------------------------------------------


# /metrics needs a staff token (of any scope): Prometheus's, minted here with the container's secret.
METRICS_READER = {
    "Authorization": "Bearer "
    + mint_token(
        Settings(env="test", jwt_secret=DOT_ENV["PRIVACY_JWT_SECRET"]), role="staff", sub="prometheus"
    )
}
DEV_METRICS_READER = {
    "Authorization": "Bearer " + mint_token(Settings(env="test"), role="staff", sub="prometheus")
}


def _metric_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.db")} if folder.exists() else set()


@NEEDS_POSTGRES
def test_containers_start_together_on_a_fresh_database_and_migrate_in_turn(tmp_path):
    """Two replicas of the api (the image's command, two workers each) on one new database: both migrate
    under the lock and serve; then the worker and the retention sweep run their commands; then a stop."""
    server = postgres_server()
    assert server is not None
    with fresh_postgres_database(server) as url:
        replicas = []
        for _ in range(2):
            port = free_port()
            env, home = container(tmp_path, PRIVACY_DATABASE_URL=url, PRIVACY_PORT=str(port))
            # A metric file left by an earlier run of this container: cleaned at start.
            (home / "privacy-metrics").mkdir()
            (home / "privacy-metrics/counter_999999.db").write_bytes(b"stale")
            replicas.append((start(IMAGE.command(), env, home, port), home))
        try:
            for served, _home in replicas:
                ready = served.wait_until("/readyz", within=90).json()
                assert ready["schema_revision"] == migrate.head_revision()
            logs = [served.output() for served, _ in replicas]
            assert all('"migration lock acquired"' in log for log in logs), logs
            assert sum('"Running upgrade' in log for log in logs) >= 1
            for served, home in replicas:
                # Both workers answer /metrics together, from the one folder the service owns.
                text_ = httpx.get(served.url + "/metrics", headers=METRICS_READER, timeout=5).text
                assert "privacy_http_requests_total" in text_
                files = _metric_files(home / "privacy-metrics")
                assert "counter_999999.db" not in files and files, files

            # The other services of compose.yaml, on the database the api migrated.
            worker_env, worker_home = container(tmp_path, "worker", PRIVACY_DATABASE_URL=url)
            drained = run(IMAGE.command("worker", "--once"), worker_env, worker_home)
            assert drained.returncode == 0, drained.stderr
            sweep_env, sweep_home = container(tmp_path, "retention", PRIVACY_DATABASE_URL=url)
            sweep = run(IMAGE.command("retention", "run", "--dry-run"), sweep_env, sweep_home)
            assert sweep.returncode == 0 and json.loads(sweep.stdout)["status"] == "completed", sweep.stderr
        finally:
            codes = [served.stop() for served, _ in replicas]
        assert codes == [0, 0], [served.output()[-3000:] for served, _ in replicas]
        # uvicorn's supervisor joined both workers of each replica, and each was marked dead for prometheus.
        for served, _home in replicas:
            assert served.output().count('"worker exited; its metrics marked dead"') == 2, served.output()[
                -3000:
            ]


@NEEDS_POSTGRES
def test_a_dead_worker_is_replaced_and_marked_dead(tmp_path):
    server = postgres_server()
    assert server is not None
    with fresh_postgres_database(server) as url:
        port = free_port()
        env, home = container(tmp_path, PRIVACY_DATABASE_URL=url, PRIVACY_PORT=str(port))
        served = start(IMAGE.command(), env, home, port)
        try:
            served.wait_until("/readyz", within=90)
            deadline = time.monotonic() + 60
            while len(workers := re.findall(r"Application startup complete", served.output())) < 2:
                assert time.monotonic() < deadline, served.output()[-3000:]
                time.sleep(0.1)
            workers = [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", served.output())]
            os.kill(workers[0], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while f'"pid": {workers[0]}' not in served.output():
                assert time.monotonic() < deadline, served.output()[-3000:]
                time.sleep(0.2)
            served.wait_until("/healthz")
        finally:
            served.stop()


# --- the migration lock -------------------------------------------------------------------------------------


def _version(url: str) -> str | None:
    async def go() -> str | None:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as connection:
                return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _lock_is_free(url: str) -> bool:
    """Whether another session could take the migration lock now (it gives it back at once)."""

    async def go() -> bool:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as connection:
                key = {"key": migrate.MIGRATION_LOCK_KEY}
                taken = (
                    await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key)
                ).scalar_one()
                if taken:
                    await connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                return bool(taken)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@NEEDS_POSTGRES
def test_two_concurrent_upgrades_of_a_fresh_database_both_succeed(tmp_path):
    """Without the lock, two upgrades racing on an empty database fail (duplicate types and tables)."""
    server = postgres_server()
    assert server is not None
    with fresh_postgres_database(server) as url:
        env = clean_environment(PRIVACY_DATABASE_URL=url, PRIVACY_LOG_LEVEL="INFO")
        processes = [
            subprocess.Popen(
                ["privacy", "migrate"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=120)[0] for process in processes]
        assert [process.returncode for process in processes] == [0, 0], outputs
        assert _version(url) == migrate.head_revision()
        assert all('"migration lock acquired"' in output for output in outputs)
        assert _lock_is_free(url)


@NEEDS_POSTGRES
def test_the_lock_is_held_for_the_whole_upgrade(monkeypatch):
    server = postgres_server()
    assert server is not None
    seen: list[bool] = []
    real_upgrade = migrate.command.upgrade

    def upgrade_watched(config: Any, revision: str) -> None:
        seen.append(_lock_is_free(url))  # before Alembic starts: held
        real_upgrade(config, revision)
        seen.append(_lock_is_free(url))  # after Alembic is done, before the lock is given back: still held

    monkeypatch.setattr(migrate.command, "upgrade", upgrade_watched)
    with fresh_postgres_database(server) as url:
        migrate.upgrade(url)
        assert seen == [False, False]
        assert _lock_is_free(url) and _version(url) == migrate.head_revision()


@NEEDS_POSTGRES
def test_a_second_upgrade_waits_for_the_first(monkeypatch):
    """One upgrade held inside the lock; another, started meanwhile, finishes only after the first."""
    server = postgres_server()
    assert server is not None
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []
    real_upgrade = migrate.command.upgrade

    def upgrade(config: Any, revision: str) -> None:
        if not inside.is_set():
            inside.set()
            release.wait(30)
            order.append("first")
        else:
            order.append("second")
        real_upgrade(config, revision)

    monkeypatch.setattr(migrate.command, "upgrade", upgrade)
    with fresh_postgres_database(server) as url:
        first = threading.Thread(target=migrate.upgrade, args=(url,))
        first.start()
        assert inside.wait(30)
        second = threading.Thread(target=migrate.upgrade, args=(url,))
        second.start()
        second.join(2)
        assert second.is_alive() and order == []  # waiting for the lock
        release.set()
        first.join(60)
        second.join(60)
        assert order == ["first", "second"] and _version(url) == migrate.head_revision()


def test_sqlite_needs_no_lock(tmp_path):
    url = f"sqlite:///{tmp_path}/t.db"
    with migrate.migration_lock(url):
        pass  # no connection, no file
    assert not (tmp_path / "t.db").exists()


# --- several workers' metrics -------------------------------------------------------------------------------


def test_the_metrics_folder_is_one_the_service_owns_and_is_cleaned_at_start(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    folder = tmp_path / "metrics"
    folder.mkdir()
    for name in ("counter_12.db", "histogram_12.db", "gauge_livesum_12.db", "notes.txt", "other.db"):
        (folder / name).write_text("x")
    assert cli.metrics_folder(Settings(metrics_dir=folder)) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "other.db"]
    default = Settings().metrics_dir
    assert not default.is_absolute() and default.name == "privacy-metrics"  # in the working directory


def test_serving_several_workers_leaves_no_temporary_folders(tmp_path):
    """`privacy serve --workers 2` twice: one metrics folder, nothing new under the temporary directory."""
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("privacy-metrics-*"))
    for _ in range(2):
        port = free_port()
        env = clean_environment(
            PRIVACY_DATABASE_URL=f"sqlite:///{tmp_path}/privacy.db",
            PRIVACY_LOG_LEVEL="INFO",
            PRIVACY_RECEIPT_KEY_FILE=str(tmp_path / "receipt.pem"),
        )
        served = start(["privacy", "serve", "--port", str(port), "--workers", "2"], env, tmp_path, port)
        try:
            served.wait_until("/readyz", within=90)
            assert (
                httpx.get(served.url + "/metrics", headers=DEV_METRICS_READER, timeout=5).status_code == 200
            )
        finally:
            assert served.stop() == 0, served.output()[-2000:]
    assert set(Path(tempfile.gettempdir()).glob("privacy-metrics-*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["privacy-metrics"]


# --- the retention schedule (compose.yaml's retention service) ----------------------------------------------


def test_next_run_is_the_next_time_of_day_in_utc():
    from datetime import UTC, datetime
    from datetime import time as clock

    now = datetime(2026, 11, 29, 2, 15, tzinfo=UTC)
    assert cli.next_run(now, clock(2, 15)) == datetime(2026, 11, 30, 2, 15, tzinfo=UTC)  # strictly after
    assert cli.next_run(now, clock(3, 0)) == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert cli.next_run(now, clock(1, 0)) == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


async def test_the_schedule_sweeps_at_its_time_every_day_and_survives_a_failed_run():
    from datetime import UTC, datetime, timedelta
    from datetime import time as clock

    from app.core.errors import Conflict

    start_at = datetime(2026, 11, 29, 2, 14, 59, 900000, tzinfo=UTC)
    moments = iter([start_at, start_at, start_at + timedelta(days=1), start_at + timedelta(days=1)])
    stop = asyncio.Event()
    runs: list[str] = []

    async def sweep() -> dict[str, Any]:
        runs.append("run")
        if len(runs) == 1:
            raise Conflict("A retention run is already under way")  # logged; the next day's goes ahead
        stop.set()
        return {"status": "completed"}

    await asyncio.wait_for(cli.run_daily(clock(2, 15), sweep, stop, now=lambda: next(moments)), timeout=10)
    assert runs == ["run", "run"]


def test_the_schedule_waits_for_its_time_and_stops_on_sigterm(tmp_path):
    env = clean_environment(
        PRIVACY_DATABASE_URL=f"sqlite:///{tmp_path}/privacy.db",
        PRIVACY_RECEIPT_KEY_FILE=str(tmp_path / "receipt.pem"),
    )
    scheduled = start(IMAGE.command("retention", "schedule", "--at", "02:15"), env, tmp_path, 0)
    try:
        deadline = time.monotonic() + 60
        while '"next retention run"' not in scheduled.output():
            assert scheduled.process.poll() is None and time.monotonic() < deadline, scheduled.output()
            time.sleep(0.1)
        assert re.search(r'"at": "\d{4}-\d\d-\d\dT02:15:00\+00:00"', scheduled.output())
    finally:
        assert scheduled.stop(timeout=10) == 0, scheduled.output()


def test_the_documented_docker_run_passes_the_checks_the_container_makes(tmp_path):
    """docs/operations.md's `docker run`, with its placeholders filled in: `check` finds nothing to refuse."""
    docs = (REPO / "docs/operations.md").read_text()
    command = re.search(r"\ndocker run (.*?)\n```", docs, re.S).group(1).replace("\\\n", " ")
    given = dict(pair.split("=", 1) for pair in re.findall(r"-e (\S+)", command))
    assert set(given) >= {
        "PRIVACY_DATABASE_URL",
        "PRIVACY_JWT_SECRET",
        "PRIVACY_ENCRYPTION_KEYS",
        "PRIVACY_HASH_KEY",
        "PRIVACY_AUDIT_KEYS",
        "PRIVACY_PUBLIC_BASE_URL",
        "PRIVACY_MAIL_BACKEND",
        "PRIVACY_SMTP_HOST",
        "PRIVACY_RECEIPT_KEY_FILE",
    }
    mounted = re.search(r'-v "\$PWD/receipt-key.pem:([^:]+):ro"', command).group(1)
    assert mounted == given["PRIVACY_RECEIPT_KEY_FILE"]
    placeholders = {
        key: DOT_ENV[key]
        for key in ("PRIVACY_JWT_SECRET", "PRIVACY_ENCRYPTION_KEYS", "PRIVACY_HASH_KEY", "PRIVACY_AUDIT_KEYS")
    }
    placeholders |= {"PRIVACY_SMTP_USERNAME": "privacy", "PRIVACY_SMTP_PASSWORD": "pw"}
    filled = {key: placeholders[key] if "..." in value else value for key, value in given.items()}
    filled["PRIVACY_RECEIPT_KEY_FILE"] = str(write_receipt_key(tmp_path / "receipt-key.pem"))  # the mount
    result = run(IMAGE.command("check"), clean_environment(**(IMAGE.env | filled)), tmp_path)
    assert result.returncode == 0, result.stderr
