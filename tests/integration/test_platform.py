"""The local platform for real: PostgreSQL, Docker, three registries, Airflow 3."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid

import httpx
import psycopg
import pytest

from tests.conftest import ROOT, run_dataops

pytestmark = pytest.mark.integration

DEPLOYMENTS = {"airflow-dev": 8080, "airflow-staging": 8081, "airflow-prod": 8082}
# staging runs CeleryExecutor (dataops.yml): its own Redis broker is a service of its own.
EXPECTED = {
    "postgres",
    "docker",
    "registry-dev",
    "registry-staging",
    "registry-prod",
    "redis-staging",
    *DEPLOYMENTS,
}


def status_json() -> dict:
    result = run_dataops("status", "--json")
    payload = json.loads(result.stdout)
    assert result.returncode == (0 if payload["healthy"] else 3)
    return payload


def warehouse(secrets: dict[str, str], database: str = "warehouse_dev") -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=5432,
        dbname=database,
        user="dataops",
        password=secrets["DATAOPS_POSTGRES_ADMIN_PASSWORD"],
        autocommit=True,
    )


def airflow_token(password: str) -> httpx.Response:
    return httpx.post(
        "http://127.0.0.1:8080/auth/token",
        json={"username": "admin", "password": password},
        timeout=10,
    )


def test_status_json_reports_every_service_healthy(platform_up: dict[str, str]) -> None:
    payload = status_json()
    services = {s["name"]: s for s in payload["services"]}
    assert set(services) == EXPECTED
    for name, service in services.items():
        assert service["health"] == "healthy", (name, service)
        assert service["state"] in ("running", "external"), (name, service)
    assert services["registry-staging"]["address"] == "127.0.0.1:5002"
    for name, port in DEPLOYMENTS.items():
        assert services[name]["address"] == f"http://127.0.0.1:{port}"
        components = services[name]["components"]
        assert {"api-server", "scheduler", "dag-processor", "triggerer"} <= set(components)
        # Airflow's health endpoint covers its own components; a Celery worker is a running
        # process (Airflow reports no health of its own for it).
        workers = {n: c for n, c in components.items() if n.startswith("celery-worker-")}
        assert all(c["health"] == "healthy" for n, c in components.items() if n not in workers)
        assert all(c["state"] == "running" for c in workers.values()), workers
        assert len(workers) == (2 if name == "airflow-staging" else 0)


def test_warehouses_and_airflow_metadata_db_exist(platform_up: dict[str, str]) -> None:
    with warehouse(platform_up, "postgres") as conn:
        names = {row[0] for row in conn.execute("select datname from pg_database")}
        listen = conn.execute("show listen_addresses").fetchone()[0]
    assert {"warehouse_dev", "warehouse_staging", "warehouse_prod"} <= names
    assert {"airflow_dev", "airflow_staging", "airflow_prod"} <= names
    assert listen == "127.0.0.1"


@pytest.mark.parametrize("port,env", [(5002, "STAGING"), (5003, "PROD")])
def test_staging_and_prod_registries_require_auth(
    platform_up: dict[str, str], port: int, env: str
) -> None:
    url = f"http://127.0.0.1:{port}/v2/"
    anonymous = httpx.get(url, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    wrong = httpx.get(url, auth=("dataops", "wrong"), timeout=5)
    assert wrong.status_code == 401
    password = platform_up[f"DATAOPS_REGISTRY_{env}_PASSWORD"]
    assert httpx.get(url, auth=("dataops", password), timeout=5).status_code == 200


def test_dev_registry_is_open_on_loopback(platform_up: dict[str, str]) -> None:
    assert httpx.get("http://127.0.0.1:5001/v2/", timeout=5).status_code == 200


def test_airflow_login_with_printed_credentials(platform_up: dict[str, str]) -> None:
    password = platform_up["DATAOPS_AIRFLOW_DEV_PASSWORD"]
    up = run_dataops("up", "--no-install")
    assert f"(dev): http://127.0.0.1:8080  login: admin / {password}" in up.stdout.replace("\n", "")
    response = airflow_token(password)
    assert response.status_code == 201, response.text
    token = response.json()["access_token"]
    me = httpx.get(
        "http://127.0.0.1:8080/api/v2/dags",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert me.status_code == 200
    assert airflow_token("wrong").status_code == 401
    ui = httpx.get("http://127.0.0.1:8080/", timeout=10, follow_redirects=True)
    assert ui.status_code == 200 and "<html" in ui.text.lower()


def test_base_image_exists_and_runs_python(platform_up: dict[str, str]) -> None:
    inspect = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            '{{index .Config.Labels "org.dataops.base.source"}}',
            "dataops/base:bookworm",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert inspect.returncode == 0, inspect.stderr
    assert inspect.stdout.strip().split(":")[0] in ("upstream", "debootstrap")
    ran = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "host",
            "dataops/base:bookworm",
            "python3",
            "-c",
            "import sys; print(sys.version_info[:2])",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "(3, 11)"


def test_up_twice_changes_nothing(platform_up: dict[str, str]) -> None:
    before = {s["name"]: s["pid"] for s in status_json()["services"]}
    result = run_dataops("up", "--no-install")
    assert result.returncode == 0, result.stderr
    assert "Everything was already up; nothing changed" in result.stdout
    assert "starting" not in result.stderr
    after = {s["name"]: s["pid"] for s in status_json()["services"]}
    assert before == after


def test_down_then_up_keeps_the_data(platform_up: dict[str, str]) -> None:
    marker = uuid.uuid4().hex
    # 1. a row in the warehouse
    with warehouse(platform_up) as conn:
        conn.execute("create table if not exists public.dataops_test_marker (value text)")
        conn.execute("insert into public.dataops_test_marker values (%s)", (marker,))
    # 2. a blob in the dev registry (OCI monolithic upload)
    blob = f"blob {marker}".encode()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    started = httpx.post("http://127.0.0.1:5001/v2/test/keep/blobs/uploads/", timeout=10)
    assert started.status_code == 202
    location = httpx.URL("http://127.0.0.1:5001").join(started.headers["location"])
    put = httpx.put(location.copy_merge_params({"digest": digest}), content=blob, timeout=10)
    assert put.status_code == 201, put.text
    # 3. a variable in Airflow's metadata DB
    token = airflow_token(platform_up["DATAOPS_AIRFLOW_DEV_PASSWORD"]).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        "http://127.0.0.1:8080/api/v2/variables",
        headers=auth,
        json={"key": f"marker_{marker}", "value": marker},
        timeout=10,
    )
    assert created.status_code == 201, created.text

    down = run_dataops("down")
    assert down.returncode == 0, down.stderr
    stopped = {s["name"]: s for s in status_json()["services"]}
    for name in EXPECTED - {"docker"}:
        assert stopped[name]["state"] == "stopped", stopped[name]
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:5001/v2/", timeout=3)

    up = run_dataops("up", "--no-install")
    assert up.returncode == 0, up.stderr
    with warehouse(platform_up) as conn:
        values = {row[0] for row in conn.execute("select value from public.dataops_test_marker")}
    assert marker in values
    fetched = httpx.get(f"http://127.0.0.1:5001/v2/test/keep/blobs/{digest}", timeout=10)
    assert fetched.status_code == 200 and fetched.content == blob
    token = airflow_token(platform_up["DATAOPS_AIRFLOW_DEV_PASSWORD"]).json()["access_token"]
    variable = httpx.get(
        f"http://127.0.0.1:8080/api/v2/variables/marker_{marker}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert variable.status_code == 200 and variable.json()["value"] == marker
    assert status_json()["healthy"]
    assert (ROOT / ".dataops" / "logs" / "postgres.log").exists()
