"""The task supervisor notices its task process's exit at once (Airflow 3.3's waits up to 1 s).

Airflow's task supervisor (`airflow.sdk.execution_time.supervisor.ActivitySubprocess`) waits for
its task process in a loop: `select` on the process's sockets for up to
`[workers] min_heartbeat_interval` seconds, then a non-blocking `wait` for its exit code. When
the process ends, the kernel closes its sockets a moment before the process can be reaped: the
supervisor reads their EOF, finds no exit code yet, and goes back to `select` with no socket
left, which sleeps the whole interval. So nearly every task held its executor slot about 1 s
past its end (scheduler log, prod: the task's last line at 10.963, the supervisor's "Workload
finished" at 11.973), and the next task waited for it.

`install()` makes that one case (every socket closed, no exit code, nobody waiting with a
timeout of their own) poll for the exit every 10 ms instead; the process is gone within a few
ms. Everything else runs Airflow's own code. It checks the method it wraps has the signature
it was written for (Airflow 3.3) and leaves Airflow alone, saying so, when it does not.

Installed in the processes that supervise tasks: the scheduler before it forks the
LocalExecutor's workers (`dataops.airflow.executors.LocalExecutor`), and each Celery worker
before it forks its pool (`dataops.airflow.celery_config`, Celery's `imports`).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

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
