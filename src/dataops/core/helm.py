"""Values for the official Apache Airflow Helm chart, one file per environment, rendered from
dataops.yml (pure: the same config in, the same text out).

What the chart gets: the environment's executor (Celery workers and their queues, or
LocalExecutor), the release DAG bundle as its only DAG source (no git-sync, no DAG volume), the
KubernetesPodOperator runtime for the tasks, and every secret from Kubernetes Secrets by name
(the files name Secrets and keys, never a value).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from dataops.core.config import EnvironmentConfig, RuntimeConfig, RuntimeKind

AIRFLOW_VERSION = "3.3.2"
HELM_DIR = "infra/helm"
BUNDLE_CLASS = "dataops.airflow.bundle.ReleaseDagBundle"
ACTIVE_MOUNT = "/opt/airflow/dataops"  # the active-release ConfigMap (docs/how-to/scale-out.md)


def secret_name(env: str, what: str) -> str:
    return f"dataops-{env}-{what}"


def values(env: str, config: EnvironmentConfig, toolkit_version: str) -> dict[str, Any]:
    """The chart values of one environment."""
    airflow = config.airflow
    runtime = RuntimeConfig(
        **{**config.runtime.model_dump(), "kind": RuntimeKind.KUBERNETES},
    )
    registry = config.registry
    upper = env.upper().replace("-", "_")
    secrets = [(f"AIRFLOW_CONN_WAREHOUSE_{upper}", "connections", "warehouse")]
    if registry.password_env:
        secrets.append((f"AIRFLOW_CONN_REGISTRY_{upper}", "connections", "registry"))
    document: dict[str, Any] = {
        "airflowVersion": AIRFLOW_VERSION,
        # An Airflow image with the dataops package (its DAG factory, bundle, plugin) in it.
        "defaultAirflowRepository": f"{registry.address}/dataops/airflow",
        "defaultAirflowTag": f"{AIRFLOW_VERSION}-dataops-{toolkit_version}",
        "executor": "CeleryExecutor" if airflow.executor == "celery" else "LocalExecutor",
        "env": [
            {"name": "DATAOPS_ENV", "value": env},
            {"name": "DATAOPS_RUNTIME", "value": runtime.model_dump_json()},
            {"name": "DATAOPS_REGISTRY", "value": registry.address},
            {"name": "DATAOPS_REGISTRY_URL", "value": registry.url},
            {"name": "DATAOPS_ACTIVE_FILE", "value": f"{ACTIVE_MOUNT}/active-{env}.json"},
        ],
        "secret": [
            {"envName": name, "secretName": secret_name(env, group), "secretKey": key}
            for name, group, key in secrets
        ],
        "data": {"metadataSecretName": secret_name(env, "metadata")},
        # One JWT secret and API key shared by every component (api-server, scheduler,
        # workers): tasks reach the execution API with tokens the api-server signed. The
        # chart's own keys (1.16+): Secrets with keys `jwt-secret` and `api-secret-key`.
        "jwtSecretName": secret_name(env, "jwt-secret"),
        "apiSecretKeySecretName": secret_name(env, "api-secret-key"),
        "config": {
            "core": {
                "load_examples": "False",
                "hostname_callable": "dataops.airflow.runtime.worker_hostname",
            },
            "dag_processor": {
                "dag_bundle_config_list": json.dumps(
                    [{"name": "release", "classpath": BUNDLE_CLASS, "kwargs": {}}]
                ),
            },
        },
        # The DAG code is the release's, fetched by digest from the registry by the bundle.
        "dags": {"persistence": {"enabled": False}, "gitSync": {"enabled": False}},
        "volumes": [
            {"name": "dataops-active", "configMap": {"name": secret_name(env, "active-release")}}
        ],
        "volumeMounts": [{"name": "dataops-active", "mountPath": ACTIVE_MOUNT, "readOnly": True}],
    }
    if airflow.executor == "celery" and airflow.celery is not None:
        celery = airflow.celery
        queues = ",".join(sorted(celery.queues))
        document["data"]["brokerUrlSecretName"] = secret_name(env, "broker")
        document["redis"] = {
            "enabled": True,
            "passwordSecretName": secret_name(env, "redis-password"),
        }
        document["workers"] = {
            "replicas": len(celery.workers),
            # Every chart worker serves the union of the workers' queues (the chart runs one
            # worker set; a second set for a queue of its own is a second release of it).
            "args": ["bash", "-c", f"exec airflow celery worker --queues {queues}"],
        }
        document["config"]["celery"] = {"worker_prefetch_multiplier": 1}
        document["config"]["celery_broker_transport_options"] = {
            "visibility_timeout": celery.visibility_timeout_seconds
        }
        document["config"]["scheduler"] = {
            "task_instance_heartbeat_timeout": celery.task_heartbeat_timeout_seconds,
            # Tasks the chart's scheduler queues beyond its workers' free slots wait in Redis
            # (its parallelism is the chart's own; queue_ahead applies to `dataops up` only).
            "task_queued_timeout": celery.task_queued_timeout_seconds,
        }
    else:
        document["redis"] = {"enabled": False}
    return document


def render(env: str, config: EnvironmentConfig, toolkit_version: str) -> str:
    header = (
        f"# Written by `dataops helm values --env {env}` from dataops.yml; regenerate it, do not\n"
        "# edit it. Values for the official Apache Airflow Helm chart (apache-airflow/airflow).\n"
        "# The Secrets named here hold the values; create them in the release's namespace.\n"
    )
    return header + yaml.safe_dump(values(env, config, toolkit_version), sort_keys=False)
