"""The official Airflow Helm chart's values, rendered from dataops.yml (pure)."""

from __future__ import annotations

from pathlib import Path

import yaml

from dataops import __version__
from dataops.core.config import RuntimeConfig, RuntimeKind, load_config
from dataops.core.helm import HELM_DIR, render, values
from tests.conftest import PROJECT, ROOT


def test_the_committed_values_are_what_dataops_yml_renders() -> None:
    environments = load_config(PROJECT / "dataops.yml").config.environments
    for env, config in environments.items():
        committed = (PROJECT / HELM_DIR / env / "values.yaml").read_text()
        assert committed == render(env, config, __version__), f"run `dataops helm values` ({env})"


def test_each_environment_gets_its_executor_runtime_and_secrets_by_name() -> None:
    environments = load_config(PROJECT / "dataops.yml").config.environments
    staging = values("staging", environments["staging"], "1.2.3")
    assert staging["executor"] == "CeleryExecutor"
    assert staging["workers"]["replicas"] == 2
    assert staging["workers"]["args"][-1].endswith("--queues default,heavy")
    assert staging["redis"]["enabled"] is True
    assert staging["config"]["celery_broker_transport_options"]["visibility_timeout"] > 86400
    prod = values("prod", environments["prod"], "1.2.3")
    assert prod["executor"] == "LocalExecutor" and prod["redis"] == {"enabled": False}
    assert "workers" not in prod
    env = {e["name"]: e["value"] for e in prod["env"]}
    runtime = RuntimeConfig.model_validate_json(env["DATAOPS_RUNTIME"])
    assert runtime.kind is RuntimeKind.KUBERNETES  # tasks are pods on the cluster
    assert env["DATAOPS_ENV"] == "prod" and env["DATAOPS_REGISTRY"] == "127.0.0.1:5003"
    assert {s["envName"] for s in prod["secret"]} == {
        "AIRFLOW_CONN_WAREHOUSE_PROD",
        "AIRFLOW_CONN_REGISTRY_PROD",
    }
    # One JWT secret and API key for every component, through the chart's own keys.
    assert prod["jwtSecretName"] == "dataops-prod-jwt-secret"
    assert prod["apiSecretKeySecretName"] == "dataops-prod-api-secret-key"
    assert all(s["secretName"].startswith("dataops-prod-") for s in prod["secret"])
    # Only prod's names: no other environment's connection or Secret.
    text = yaml.safe_dump(prod)
    assert "STAGING" not in text and "dataops-staging" not in text and "_DEV" not in text
    assert prod["dags"] == {"persistence": {"enabled": False}, "gitSync": {"enabled": False}}


def test_no_secret_value_is_ever_written(tmp_path: Path) -> None:
    environments = load_config(PROJECT / "dataops.yml").config.environments
    text = "".join(render(env, config, __version__) for env, config in environments.items())
    secrets = ROOT / ".dataops" / "secrets.env"
    if secrets.exists():  # the platform's generated secrets, when it has run here
        for line in secrets.read_text().splitlines():
            value = line.partition("=")[2].strip()
            assert not value or value not in text
    assert "password:" not in text.lower() and "pass:" not in text
