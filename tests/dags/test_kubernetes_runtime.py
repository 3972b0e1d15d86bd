"""The cluster runtime: the same specs render KubernetesPodOperator tasks with valid pod specs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import ApiClient, V1Pod

from dataops.core.pipeline import load_spec, plan, spec_files
from tests.conftest import PROJECT
from tests.dags.conftest import DAGS

RUNTIME = {"kind": "kubernetes", "namespace": "data-prod", "data_claim": "flights-data"}


@pytest.fixture
def pods(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("DATAOPS_RUNTIME", json.dumps(RUNTIME))
    monkeypatch.setenv("DATAOPS_ENV", "prod")
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from dataops.airflow.factory import build_dag

    client = ApiClient()
    found: dict[str, Any] = {}
    for path in spec_files(DAGS / "pipelines"):
        dag = build_dag(plan(load_spec(path), str(path)))
        for task in dag.tasks:
            assert isinstance(task, KubernetesPodOperator), type(task)
            pod = task.build_pod_request_obj(dry_run=True)
            manifest = client.sanitize_for_serialization(pod)
            found[f"{dag.dag_id}.{task.task_id}"] = manifest
    return found


def deserialize(manifest: dict[str, Any]) -> V1Pod:
    """Validate against the Kubernetes API models (types and required fields)."""

    class Response:
        data = json.dumps(manifest)

    pod = ApiClient().deserialize(Response(), "V1Pod")
    assert isinstance(pod, V1Pod)
    return pod


def test_every_task_renders_a_valid_pod(pods: dict[str, Any]) -> None:
    assert {"flights.extract", "flights.load", "flights.dbt", "airlines.load"} <= set(pods)
    for key, manifest in pods.items():
        pod = deserialize(manifest)
        assert pod.metadata.namespace == "data-prod", key
        container = pod.spec.containers[0]
        assert container.image.startswith("{{ dataops_image("), key  # pinned by digest at run time
        assert pod.spec.security_context.run_as_non_root is True
        assert container.security_context.read_only_root_filesystem is True
        assert container.security_context.allow_privilege_escalation is False
        assert pod.spec.restart_policy == "Never"
        claims = {
            v.persistent_volume_claim.claim_name
            for v in pod.spec.volumes
            if v.persistent_volume_claim
        }
        assert claims == {"flights-data"}
        assert {m.mount_path for m in container.volume_mounts} >= {"/data", "/tmp"}


def test_no_secret_value_is_in_a_pod_spec(pods: dict[str, Any]) -> None:
    for key, manifest in pods.items():
        container = manifest["spec"]["containers"][0]
        names = {e["name"] for e in container.get("env", [])}
        assert not {"PGPASSWORD", "PGUSER"} & names, key
        assert container["envFrom"] == [{"secretRef": {"name": "warehouse-prod"}}], key


def test_task_arguments_follow_the_spec(pods: dict[str, Any]) -> None:
    assert pods["flights.extract"]["spec"]["containers"][0]["args"] == ["extract"]
    assert pods["flights.dbt"]["spec"]["containers"][0]["args"] == [
        "transform",
        "--select",
        "stg_nycflights__flights+",
        "--target",
        "prod",
        "--audit",
        "flights",
    ]
    env = {e["name"]: e["value"] for e in pods["flights.load"]["spec"]["containers"][0]["env"]}
    assert (
        json.loads(env["DATAOPS_TASK_SPEC"].removeprefix("{% raw %}").removesuffix("{% endraw %}"))[
            "pipeline"
        ]
        == "flights"
    )
    assert env["DATAOPS_INTERVAL_START"] == "{{ data_interval_start.isoformat() }}"


def test_an_invalid_pod_is_caught_by_the_validation() -> None:
    with pytest.raises(ValueError, match="containers"):
        deserialize({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}})


def test_the_helm_values_runtime_renders_valid_pods_on_their_queues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runtime the Helm values give the cluster's Airflow (infra/helm/staging) renders
    pods that pass the Kubernetes models, and the load keeps its queue."""
    import yaml

    values = yaml.safe_load((PROJECT / "infra" / "helm" / "staging" / "values.yaml").read_text())
    for item in values["env"]:
        monkeypatch.setenv(item["name"], item["value"])
    from dataops.airflow.factory import build_dag

    path = DAGS / "pipelines" / "flights.yml"
    dag = build_dag(plan(load_spec(path), str(path)))
    client = ApiClient()
    for task in dag.tasks:
        pod = deserialize(
            client.sanitize_for_serialization(task.build_pod_request_obj(dry_run=True))
        )
        assert pod.metadata.labels["dataops.dev/environment"] == "staging"
    assert {t.task_id: t.queue for t in dag.tasks}["load"] == "heavy"
