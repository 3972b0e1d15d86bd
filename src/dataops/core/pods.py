"""Kubernetes pod specs for pipeline tasks (the cluster runtime), as plain manifests.

Pure: the DAG factory hands the manifest to KubernetesPodOperator (`pod_template_dict`), and
the tests validate it against the Kubernetes API models. No secret value is ever written into
a pod spec: the warehouse credentials come from a Secret (`envFrom`).
"""

from __future__ import annotations

import re
from typing import Any

from dataops.core.config import RuntimeConfig
from dataops.core.pipeline import PipelineSpec, TaskPlan

TASK_UID = 10001


def pod_name(pipeline: str, task_id: str) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", f"dataops-{pipeline}-{task_id}".lower()).strip("-")
    return name[:50]


def task_env(spec: PipelineSpec, task: TaskPlan, env_name: str) -> dict[str, str]:
    """The task's environment besides the warehouse credentials (Jinja where Airflow fills in)."""
    interval = {
        "DATAOPS_INTERVAL_START": "{{ data_interval_start.isoformat() }}",
        "DATAOPS_INTERVAL_END": "{{ data_interval_end.isoformat() }}",
    }
    if task.image == "transform":
        # The interval names its load, which a publish of a later run may already hold.
        return {"DBT_TARGET": env_name, **interval}
    return {
        "DATAOPS_TASK_SPEC": "{% raw %}"
        # Where a task runs (its queue) is Airflow's business, not the container's: left out,
        # so images of releases made before `queue:` existed still accept the spec.
        # (pydantic's own JSON: a quarter of the time of model_dump + json.dumps, each parse)
        + spec.model_dump_json(exclude={"queue"})
        + "{% endraw %}",
        **interval,
        "DATAOPS_DATA_DIR": "/data",
    }


def task_args(spec: PipelineSpec, task: TaskPlan, env_name: str) -> list[str]:
    if task.image == "transform":
        # Build and test in the pipeline's audit schemas, publish only when all passed
        # (dataops.task.transform).
        return [*task.args, "--target", env_name, "--audit", spec.pipeline]
    return list(task.args)


def render_pod(
    spec: PipelineSpec, task: TaskPlan, env_name: str, runtime: RuntimeConfig, image: str
) -> dict[str, Any]:
    secret = runtime.warehouse_secret or f"warehouse-{env_name}"
    labels = {
        "app.kubernetes.io/name": "dataops-task",
        "app.kubernetes.io/managed-by": "dataops",
        "dataops.dev/pipeline": spec.pipeline.replace("_", "-"),
        "dataops.dev/task": task.task_id,
        "dataops.dev/environment": env_name,
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": TASK_UID,
            "runAsGroup": TASK_UID,
            "fsGroup": TASK_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "base",  # KubernetesPodOperator's name for the task container
                "image": image,
                "args": task_args(spec, task, env_name),
                "env": [{"name": k, "value": v} for k, v in task_env(spec, task, env_name).items()],
                "envFrom": [{"secretRef": {"name": secret}}],
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"memory": "2Gi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": runtime.data_claim}},
            {"name": "tmp", "emptyDir": {}},
        ],
        "activeDeadlineSeconds": spec.timeout_minutes * 60,
    }
    if runtime.service_account:
        pod_spec["serviceAccountName"] = runtime.service_account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(spec.pipeline, task.task_id),
            "namespace": runtime.namespace,
            "labels": labels,
        },
        "spec": pod_spec,
    }
