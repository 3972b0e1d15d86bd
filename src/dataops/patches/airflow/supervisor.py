"""The task supervisor notices its task process's exit at once (Airflow 3.3's waits up to 1 s).

Targets apache-airflow 3.3.2 (apache-airflow-task-sdk 1.3.2, where the supervisor lives).
Private internals touched: `airflow.sdk.execution_time.supervisor.ActivitySubprocess`'s method
`_service_subprocess(self, max_wait_time, raise_on_timeout=False, expect_signal=None)`, replaced
on the class by a wrapper, and its instance attributes `_exit_code` and `_open_sockets`, read.

Airflow's task supervisor waits for its task process in a loop: `select` on the process's
sockets for up to `[workers] min_heartbeat_interval` seconds, then a non-blocking `wait` for its
exit code. When the process ends, the kernel closes its sockets a moment before the process can
be reaped: the supervisor reads their EOF, finds no exit code yet, and goes back to `select`
with no socket left, which sleeps the whole interval. So nearly every task held its executor
slot up to that interval past its end (the scheduler log shows the task's last line, then
the supervisor's "Workload finished" an interval later), and the next task waited for it.

`install()` makes that one case (every socket closed, no exit code, nobody waiting with a
timeout of their own) poll for the exit every 10 ms instead; the process is gone within a few
ms. Everything else runs Airflow's own code. It checks the method it wraps has the signature
it was written for (Airflow 3.3) and leaves Airflow alone, saying so, when it does not.

Installed in the processes that supervise tasks: the scheduler before it forks the
LocalExecutor's workers (`dataops.airflow.executors.LocalExecutor`, which `[core] executor`
names), and each Celery worker before it forks its pool (`dataops.airflow.celery_worker`, which
`dataops.airflow.celery_config.CELERY_CONFIG` lists in Celery's `imports`).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from dataops.patches.airflow import TARGET, TASK_SDK

TARGETS = (TARGET, TASK_SDK)
UPGRADE_CHECK = (
    "airflow/sdk/execution_time/supervisor.py: ActivitySubprocess._service_subprocess still has "
    "the parameters (self, max_wait_time, raise_on_timeout, expect_signal), still selects on "
    "self.selector for max_wait_time and then reads the exit code with a non-blocking wait, and "
    "the attributes _exit_code and _open_sockets still mean the same; then run "
    "tests/dags/test_supervision.py (its test of Airflow's own method shows whether the 1 s "
    "wait is still there: if it is gone, remove this patch)"
)
EXIT_POLL_SECONDS = 0.01
_EXPECTED = ["self", "max_wait_time", "raise_on_timeout", "expect_signal"]
log = logging.getLogger(__name__)


def install() -> bool:
    """Wrap `ActivitySubprocess._service_subprocess` once; True when it is (now) wrapped."""
    from airflow.sdk.execution_time.supervisor import ActivitySubprocess

    original = ActivitySubprocess._service_subprocess
    if getattr(original, "_dataops_exit_poll", False):
        return True
    if list(inspect.signature(original).parameters) != _EXPECTED:
        log.warning(
            "dataops: Airflow's task supervisor is not the one this fix was written for "
            "(ActivitySubprocess._service_subprocess%s); tasks may hold their slot up to "
            "[workers] min_heartbeat_interval after they end",
            inspect.signature(original),
        )
        return False

    def _service_subprocess(
        self: Any,
        max_wait_time: float,
        raise_on_timeout: bool = False,
        expect_signal: int | None = None,
    ) -> int | None:
        if (
            not raise_on_timeout
            and expect_signal is None
            and self._exit_code is None
            and not self._open_sockets
        ):
            max_wait_time = min(max_wait_time, EXIT_POLL_SECONDS)
        return original(  # type: ignore[no-any-return]
            self, max_wait_time, raise_on_timeout=raise_on_timeout, expect_signal=expect_signal
        )

    _service_subprocess._dataops_exit_poll = True  # type: ignore[attr-defined]
    _service_subprocess.__wrapped__ = original  # type: ignore[attr-defined]
    ActivitySubprocess._service_subprocess = _service_subprocess  # type: ignore[method-assign]
    return True
