"""How long a task may wait queued in a Celery environment (`dataops validate`'s bound): the
scheduler queues up to every slot times 1 + queue_ahead tasks, and a queue served by only some
workers has the rest waiting behind its own slots."""

from __future__ import annotations

from dataops.core.capacity import queued_wait_seconds
from dataops.core.config import CeleryConfig

HOUR = 3600


def celery(queue_ahead: int, *workers: tuple[str, list[str]]) -> CeleryConfig:
    return CeleryConfig.model_validate(
        {
            "broker_port": 6390,
            "queue_ahead": queue_ahead,
            "workers": [{"name": name, "queues": queues} for name, queues in workers],
        }
    )


def test_every_worker_serving_every_queue_waits_one_task_per_task_queued_ahead() -> None:
    both = celery(1, ("w1", ["default", "heavy"]), ("w2", ["default", "heavy"]))
    assert queued_wait_seconds(both, {"w1": 1, "w2": 1}, HOUR) == {
        "default": HOUR + 600,
        "heavy": HOUR + 600,
    }
    none_ahead = celery(0, ("w1", ["default", "heavy"]), ("w2", ["default", "heavy"]))
    assert queued_wait_seconds(none_ahead, {"w1": 1, "w2": 1}, HOUR) == {}  # never waits


def test_a_queue_only_some_workers_serve_has_the_other_slots_tasks_waiting_behind_it() -> None:
    # 5 slots, 10 tasks queued at most: 9 may wait behind heavy's single slot, 6 behind
    # default's four (two rounds).
    split = celery(1, ("w1", ["default"]), ("w2", ["heavy"]))
    assert queued_wait_seconds(split, {"w1": 4, "w2": 1}, HOUR) == {
        "default": 2 * HOUR + 600,
        "heavy": 9 * HOUR + 600,
    }
    # With nothing queued ahead the split still makes tasks wait: the scheduler counts 5 slots
    # whatever their queues, so 4 heavy tasks may wait behind its one slot, a default behind 4.
    flat = celery(0, ("w1", ["default"]), ("w2", ["heavy"]))
    assert queued_wait_seconds(flat, {"w1": 4, "w2": 1}, HOUR) == {
        "default": HOUR + 600,
        "heavy": 4 * HOUR + 600,
    }
