"""dev, staging and prod as real environments: one Airflow deployment each, with its own port,
metadata DB, warehouse role and registry credentials, running exactly its active release (DAG
code and images) and nothing of another environment's.

The module promotes the dev release to staging, smoke-tests it there for real, and promotes it
to prod; the tests then look at what each deployment holds and does.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from dataops.core import compiled_specs
from dataops.core.pipeline import load_spec
from tests.conftest import ROOT, run_dataops

pytestmark = pytest.mark.integration
ENVS = {"dev": 8080, "staging": 8081, "prod": 8082}
STATE = ROOT / ".dataops"


def ok(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    result = run_dataops(*args, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def connect(database: str, user: str, password: str) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=5432,
        dbname=database,
        user=user,
        password=password,
        autocommit=True,
        connect_timeout=5,
    )


def count(secrets: dict[str, str], env: str, table: str) -> int:
    with connect(f"warehouse_{env}", "dataops", secrets["DATAOPS_POSTGRES_ADMIN_PASSWORD"]) as c:
        if c.execute("select to_regclass(%s)", [table]).fetchone() == (None,):
            return 0
        row = c.execute(f"select count(*) from {table}").fetchone()
    assert row is not None
    return int(row[0])


def loads(secrets: dict[str, str], env: str, pipeline: str) -> int:
    """How many loads of `pipeline` env's warehouse has recorded (dataops.load_audit)."""
    with connect(f"warehouse_{env}", "dataops", secrets["DATAOPS_POSTGRES_ADMIN_PASSWORD"]) as c:
        row = c.execute(
            "select count(*) from dataops.load_audit where pipeline = %s", [pipeline]
        ).fetchone()
    assert row is not None
    return int(row[0])


def api(env: str, secrets: dict[str, str]) -> httpx.Client:
    port = ENVS[env]
    password = secrets[f"DATAOPS_AIRFLOW_{env.upper()}_PASSWORD"]
    token = httpx.post(
        f"http://127.0.0.1:{port}/auth/token",
        json={"username": "admin", "password": password},
        timeout=10,
    ).json()["access_token"]
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}/api/v2",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def active(env: str) -> str:
    return json.loads(ok("release", "list", "--env", env, "--json").stdout)["active"]


@pytest.fixture(scope="module")
def in_prod(pipelines_ready: dict[str, str]) -> dict[str, str]:
    """dev's release, passed ci, promoted to staging, smoke-tested there, promoted to prod."""
    ok("release", "check", "--env", "dev", "--name", "ci", "--passed", "--detail", "test")
    ok("promote", "--to", "staging")
    ok("release", "smoke", "--env", "staging")
    ok("promote", "--to", "prod", "--approve", "--approver", "root")
    return pipelines_ready


def test_each_environment_has_its_own_deployment(platform_up: dict[str, str]) -> None:
    status = json.loads(run_dataops("status", "--json").stdout)
    services = {s["name"]: s for s in status["services"]}
    for env, port in ENVS.items():
        service = services[f"airflow-{env}"]
        assert service["health"] == "healthy", service
        assert service["address"] == f"http://127.0.0.1:{port}"
        config = (STATE / "airflow" / env / "airflow.cfg").read_text()
        assert f"/airflow_{env}\n" in config  # its own metadata DB ...
        assert f"port = {port}\n" in config
        assert "dataops.airflow.bundle.ReleaseDagBundle" in config  # ... and only the release
        held = (STATE / "airflow" / env / "dataops.env").read_text()
        # Its own warehouse connection and registry login only; no other environment's.
        assert f"AIRFLOW_CONN_WAREHOUSE_{env.upper()}=" in held
        for other in set(ENVS) - {env}:
            assert f"_{other.upper()}=" not in held
            assert f"warehouse_{other}" not in held
            for secret in ("WAREHOUSE", "REGISTRY", "AIRFLOW"):
                value = platform_up.get(f"DATAOPS_{secret}_{other.upper()}_PASSWORD")
                if value:
                    assert value not in held and value not in config
        # One stale-bundle cleaner per deployment (the dag-processor): two racing over one
        # version folder crash the scheduler's loop (see deployment.ONE_BUNDLE_CLEANER).
        # (A Celery worker's retitled process hides its environment; its argv is set in
        # deployment.py the same way.)
        for name in ("scheduler", "dag-processor"):
            pid = service["components"][name]["pid"]
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            off = b"AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_INTERVAL=0" in environ
            assert off == (name == "scheduler"), (env, name)
    # The prod admin password does not open the dev deployment.
    refused = httpx.post(
        "http://127.0.0.1:8080/auth/token",
        json={"username": "admin", "password": platform_up["DATAOPS_AIRFLOW_PROD_PASSWORD"]},
        timeout=10,
    )
    assert refused.status_code == 401


def test_up_of_one_environment_touches_only_its_services(platform_up: dict[str, str]) -> None:
    result = ok("up", "--env", "prod", "--no-install")
    assert "Everything was already up; nothing changed" in result.stdout
    assert "airflow-prod" in result.stdout and "registry-prod" in result.stdout
    assert "airflow-dev" not in result.stdout and "registry-staging" not in result.stdout
    assert "Airflow web UI (prod): http://127.0.0.1:8082" in result.stdout
    unknown = run_dataops("up", "--env", "qa", "--no-install")
    assert unknown.returncode == 2 and "no environment named 'qa'" in unknown.stderr


def test_the_dev_role_is_refused_by_warehouse_prod(platform_up: dict[str, str]) -> None:
    dev_password = platform_up["DATAOPS_WAREHOUSE_DEV_PASSWORD"]
    with connect("warehouse_dev", "dataops_dev", dev_password) as conn:
        assert conn.execute("select current_user").fetchone() == ("dataops_dev",)
    for database in ("warehouse_prod", "warehouse_staging", "airflow_prod"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            connect(database, "dataops_dev", dev_password)
    # Nor does prod's own role reach dev's warehouse.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect("warehouse_dev", "dataops_prod", platform_up["DATAOPS_WAREHOUSE_PROD_PASSWORD"])


@pytest.mark.parametrize(
    "statement,error",
    [
        ("update dataops.release_history set ok = not ok", "permission denied"),
        ("delete from dataops.release_history", "permission denied"),
        ("truncate dataops.release_history", "permission denied"),
        (
            "drop trigger release_history_append_only on dataops.release_history",
            "must be owner",
        ),
        ("alter table dataops.release_history disable trigger all", "must be owner"),
        ("drop table dataops.release_history", "must be owner"),
        ("drop schema dataops cascade", "must be owner"),
    ],
)
def test_the_release_history_cannot_be_altered_by_the_runtime_role(
    platform_up: dict[str, str], statement: str, error: str
) -> None:
    password = platform_up["DATAOPS_WAREHOUSE_PROD_PASSWORD"]
    with connect("warehouse_prod", "dataops_prod", password) as conn:
        before = conn.execute("select count(*) from dataops.release_history").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=error):
            conn.execute(statement)
        # It may read and append (the CLI records promotions as this role), in a transaction
        # rolled back here so the history keeps no test row.
        with conn.transaction(force_rollback=True):
            conn.execute(
                "insert into dataops.release_history (release_id, action, actor, ok)"
                " values ('sha256:test', 'check', 'test', true)"
            )
        after = conn.execute("select count(*) from dataops.release_history").fetchone()
    assert before == after


def test_staging_smoke_ran_the_pipelines_in_staging(in_prod: dict[str, str]) -> None:
    staging = json.loads(ok("release", "list", "--env", "staging", "--json").stdout)
    smoke = [
        e for e in staging["history"] if e["action"] == "check" and e["detail"]["check"] == "smoke"
    ][-1]
    assert smoke["ok"], smoke
    detail = smoke["detail"]["detail"]
    for pipeline in ("airlines", "airports", "planes", "weather", "flights"):
        assert f"{pipeline}=" in detail, detail
    # The runs are staging's: in its Airflow, on the release, and its warehouse has the rows.
    with api("staging", in_prod) as client:
        run_id = detail.split("flights=")[1].split(",")[0].strip()
        run = client.get(f"/dags/flights/dagRuns/{run_id}").json()
    assert run["state"] == "success" and run["bundle_version"] == staging["active"]
    january = STATE / "data" / "staging" / "incoming" / "flights" / "2013-01.csv"
    assert count(in_prod, "staging", "raw.flights") == len(january.read_text().splitlines()) - 1
    assert count(in_prod, "staging", "raw.airlines") == 16


@pytest.fixture
def inspected() -> Iterator[list[str]]:
    """`docker inspect` of every task container seen while the test runs (polled)."""
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        names: set[str] = set()
        while not stop.is_set():
            ids = subprocess.run(
                ["docker", "ps", "-q", "--filter", "name=dataops-"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            for cid in set(ids) - names:
                out = subprocess.run(
                    ["docker", "inspect", cid], capture_output=True, text=True, check=False
                ).stdout
                if out.strip() and out.strip() != "[]":
                    names.add(cid)
                    seen.append(out)
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join(timeout=10)


def test_a_prod_run_lands_in_prod_only_on_prods_release_and_leaks_no_credentials(
    in_prod: dict[str, str], inspected: list[str]
) -> None:
    before = {env: count(in_prod, env, "raw.weather") for env in ("dev", "staging")}
    audits = {env: loads(in_prod, env, "weather") for env in ENVS}
    result = ok("run", "weather", "--env", "prod", "--date", "2013-01-01")
    assert "http://127.0.0.1:8082/" in result.stdout
    # prod's warehouse got a new load of every weather row; dev's and staging's got nothing.
    assert loads(in_prod, "prod", "weather") == audits["prod"] + 1
    assert count(in_prod, "prod", "raw.weather") == before["dev"] > 0
    assert {env: loads(in_prod, env, "weather") for env in ("dev", "staging")} == {
        env: audits[env] for env in ("dev", "staging")
    }
    assert {env: count(in_prod, env, "raw.weather") for env in ("dev", "staging")} == before
    # The run is on prod's release: the DAG version Airflow shows is the release id, and the
    # containers ran the release's digests from prod's own registry.
    release = active("prod")
    with api("prod", in_prod) as client:
        runs = client.get("/dags/weather/dagRuns", params={"order_by": "-run_after"}).json()
    assert runs["dag_runs"][0]["bundle_version"] == release
    # The release's DAG layer, as prod's bundle extracted it, carries each spec compiled under
    # a key prod's own toolkit accepts: its dag-processor's first parse needed no YAML.
    bundle = STATE / "airflow" / "prod" / "dag_bundles" / "release" / "versions" / release
    spec = bundle / "pipelines" / "weather.yml"
    compiled = compiled_specs.load(spec, spec.read_bytes())
    assert compiled is not None and compiled == load_spec(spec)
    record = json.loads(ok("release", "show", release, "--env", "prod", "--json").stdout)
    logs = sorted((STATE / "airflow" / "prod" / "logs" / "dag_id=weather").rglob("*.log"))
    text = "\n".join(p.read_text() for p in logs)
    extract = record["record"]["images"]["extract"]["digest"]
    assert f"127.0.0.1:5003/dataops/extract@{extract}" in text
    # The canary: prod's warehouse password is in no container's configuration and no log.
    secret = in_prod["DATAOPS_WAREHOUSE_PROD_PASSWORD"]
    assert inspected, "no task container was seen running"
    assert all("DATAOPS_SECRETS_FILE=/run/dataops/secrets.env" in out for out in inspected)
    assert not any(secret in out or "PGPASSWORD" in out for out in inspected)
    assert secret not in text
    # Each try's credentials file is gone once the try ended.
    assert list((STATE / "run" / "task-secrets" / "prod").iterdir()) == []


def test_run_refuses_an_airflow_that_is_not_the_environments_own(
    in_prod: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "dataops.yml"
    text = (ROOT / "dataops.yml").read_text()
    # prod's url mistyped as dev's deployment, with prod's credentials: dev refuses the login.
    config.write_text(text.replace("http://127.0.0.1:8082", "http://127.0.0.1:8080"))
    env = {"DATAOPS_STATE_DIR": str(STATE)}
    wrong = run_dataops(
        "run", "airlines", "--env", "prod", "--date", "2013-01-01", config=config, env=env
    )
    assert wrong.returncode != 0
    assert "refused the login of 'admin' (401)" in wrong.stderr, wrong.stderr
    # ... and even with dev's credentials, the DAGs there are dev's: refused before any run.
    config.write_text(
        text.replace("http://127.0.0.1:8082", "http://127.0.0.1:8080").replace(
            "password_env: DATAOPS_AIRFLOW_PROD_PASSWORD",
            "password_env: DATAOPS_AIRFLOW_DEV_PASSWORD",
        )
    )
    with api("dev", in_prod) as client:
        runs_before = client.get("/dags/airlines/dagRuns").json()["total_entries"]
    refused = run_dataops(
        "run", "airlines", "--env", "prod", "--date", "2013-01-01", config=config, env=env
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "runs env:dev, not env:prod: refusing to run airlines there" in refused.stderr
    with api("dev", in_prod) as client:
        assert client.get("/dags/airlines/dagRuns").json()["total_entries"] == runs_before
