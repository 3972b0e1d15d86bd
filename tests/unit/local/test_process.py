from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from dataops.local.process import ManagedProcess, process_alive, process_start_ticks


def sleeper(tmp_path: Path, name: str = "sleeper") -> ManagedProcess:
    # A parent that starts a child in its own process group: stop() must end both.
    script = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    return ManagedProcess(
        name=name,
        argv=[sys.executable, "-c", script],
        pidfile=tmp_path / f"{name}.pid",
        log=tmp_path / f"{name}.log",
        stop_timeout=5,
    )


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(proc.name))
    return found


def test_start_records_pid_and_start_time_and_stop_ends_the_group(tmp_path: Path) -> None:
    proc = sleeper(tmp_path)
    pid = proc.start()
    try:
        assert proc.pid() == pid
        recorded = proc.pidfile.read_text().split()
        assert recorded == [str(pid), str(process_start_ticks(pid))]
        for _ in range(50):
            kids = children_of(pid)
            if kids:
                break
            time.sleep(0.1)
        assert kids, "the child process never started"
    finally:
        assert proc.stop() is True
    assert not process_alive(pid)
    assert all(not process_alive(kid) for kid in kids)
    assert not proc.pidfile.exists()
    assert proc.stop() is False  # idempotent


def test_a_reused_pid_is_not_trusted(tmp_path: Path) -> None:
    # The pid file names a live process (this test) but another start time: not ours.
    proc = sleeper(tmp_path)
    proc.pidfile.write_text(f"{os.getpid()} 1\n")
    assert proc.pid() is None
    assert not proc.pidfile.exists(), "a stale pid file is removed"
    assert proc.stop() is False
    assert process_alive(os.getpid())


def test_a_garbage_pid_file_is_ignored(tmp_path: Path) -> None:
    proc = sleeper(tmp_path)
    proc.pidfile.write_text("not a pid")
    assert proc.pid() is None
