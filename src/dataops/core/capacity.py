"""How many tasks a deployment runs at once and how long a queued task may wait (pure).

The local deployments size themselves from the host (`local/deployment.py`), and `dataops
validate` bounds the queued wait of Celery environments with the same numbers.
"""

from __future__ import annotations

import os

from dataops.core.config import CeleryConfig

# What a queued task may wait on top of the tasks ahead of it (Airflow's own default).
QUEUED_MARGIN_SECONDS = 600


def host_parallelism(deployments: int = 1, cpus: int | None = None) -> int:
    """LocalExecutor worker processes of one deployment: two per core shared among the
    deployments on this host, at least two (Airflow's default is 32)."""
    cores = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(2, (2 * cores) // max(1, deployments))


def worker_concurrency(deployments: int, workers: int, cpus: int | None = None) -> int:
    """Task slots of one Celery worker when `concurrency: auto`: the deployment's share of the
    host (as for LocalExecutor) split among its workers, at least one."""
    return max(1, host_parallelism(deployments, cpus) // max(1, workers))


def hosted_here(url: str) -> bool:
    """Whether an Airflow URL is a deployment `dataops up` runs on this host."""
    return url.split("://", 1)[1].startswith(("127.0.0.1", "localhost"))


def celery_worker_slots(
    celery: CeleryConfig, deployments: int, cpus: int | None = None
) -> dict[str, int]:
    """Each Celery worker's task slots (`concurrency`, or its share of the host for auto)."""
    auto = worker_concurrency(deployments, len(celery.workers), cpus)
    return {
        w.name: auto if w.concurrency == "auto" else int(str(w.concurrency)) for w in celery.workers
    }


def queued_wait_seconds(
    celery: CeleryConfig, slots: dict[str, int], longest_seconds: int
) -> dict[str, int]:
    """The longest a task of each queue may wait queued: the scheduler queues up to
    `parallelism` (every slot times 1 + queue_ahead) tasks, so behind the slots that serve a
    queue wait the rest, one round of the longest task for each time those slots are full, plus
    the margin. `slots` maps each worker to its task slots."""
    parallelism = celery.scheduler_parallelism(sum(slots.values()))
    waits = {}
    for queue in sorted(celery.queues):
        serving = sum(slots[w.name] for w in celery.workers if queue in w.queues)
        rounds = -(-(parallelism - serving) // serving)  # ceil
        if rounds > 0:
            waits[queue] = rounds * longest_seconds + QUEUED_MARGIN_SECONDS
    return waits
