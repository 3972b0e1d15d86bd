"""Start, find and stop the long-running processes of the local platform by their pid files.

A pid file holds the pid and the process's start time; it is trusted only while a live process
has both (checked in /proc), so a stale file after a crash or a reused pid never makes us signal
someone else's process. (Matching the command line would not do: Airflow retitles its processes.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 onwards), or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def process_start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, it names one process."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def reap(pid: int) -> None:
    """Collect an exited child of this process, so it does not stay a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@dataclass
class ManagedProcess:
    """One long-running program of the platform, started detached, tracked by its pid file."""

    name: str
    argv: Sequence[str]
    pidfile: Path
    log: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    stop_timeout: float = 30.0
    # SIGTERM to the leader alone, then SIGKILL to the group after the timeout: a Celery worker
    # shuts down warm (finishes its running tasks) only when its pool children are left alone.
    term_leader_only: bool = False
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def pid(self) -> int | None:
        """The pid of the running process, or None (a stale pid file is removed)."""
        try:
            pid_text, start_text = self.pidfile.read_text().split()[:2]
            pid, start = int(pid_text), int(start_text)
        except (FileNotFoundError, ValueError):
            return None
        if process_alive(pid) and process_start_ticks(pid) == start:
            return pid
        reap(pid)
        self.pidfile.unlink(missing_ok=True)
        return None

    def start(self) -> int:
        """Start it detached (own session), output appended to its log; returns the pid."""
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"\n--- {time.strftime('%FT%T')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(f"{self._popen.pid} {process_start_ticks(self._popen.pid)}\n")
        os.replace(tmp, self.pidfile)
        return self._popen.pid

    def exited_early(self) -> bool:
        """True when the process we just started has already exited."""
        return self._popen is not None and self._popen.poll() is not None

    def stop(self) -> bool:
        """SIGTERM its process group (or its leader, `term_leader_only`), SIGKILL after the
        timeout; False when it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        if self.term_leader_only:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        else:
            signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline:
            reap(pid)
            if not process_alive(pid):
                break
            time.sleep(0.1)
        else:
            signal_group(pid, signal.SIGKILL)
            for _ in range(50):
                reap(pid)
                if not process_alive(pid):
                    break
                time.sleep(0.1)
        # Children of a group leader (uvicorn workers, the executor's workers) go with it;
        # wait until they are gone too (a kill is delivered asynchronously), so a `stop` that
        # returned left nothing of the group behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        for _ in range(100):
            if not group_members(pid):
                break
            time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        return True


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group `pgid`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
