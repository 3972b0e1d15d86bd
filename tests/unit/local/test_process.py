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


def leader_with_a_child(tmp_path: Path, leader_only: bool) -> ManagedProcess:
    """A leader whose child notes a SIGTERM in a file (as a Celery pool child would die)."""
    child = (
        "import signal, sys, time, pathlib\n"
        f"folder = pathlib.Path({str(tmp_path)!r})\n"
        "def noted(*_):\n"
        "    (folder / 'child-got-term').write_text('x')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, noted)\n"
        "(folder / 'child-ready').write_text('x')\n"
        "time.sleep(300)\n"
    )
    # The leader shuts down warm: on SIGTERM it takes half a second, then exits.
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.5), sys.exit(0)))\n"
        f"subprocess.Popen([sys.executable, '-c', {child!r}])\n"
        "time.sleep(300)\n"
    )
    return ManagedProcess(
        name="leader",
        argv=[sys.executable, "-c", script],
        pidfile=tmp_path / "leader.pid",
        log=tmp_path / "leader.log",
        stop_timeout=5,
        term_leader_only=leader_only,
    )


def test_a_warm_shutdown_signals_the_leader_only_then_the_group_goes(tmp_path: Path) -> None:
    from dataops.local.process import group_members

    for leader_only in (False, True):
        for name in ("child-got-term", "child-ready"):
            (tmp_path / name).unlink(missing_ok=True)
        proc = leader_with_a_child(tmp_path, leader_only)
        pid = proc.start()
        deadline = time.monotonic() + 30
        while not (tmp_path / "child-ready").exists():  # its handler is installed
            assert time.monotonic() < deadline, "the child did not start"
            time.sleep(0.05)
        assert proc.stop()
        assert group_members(pid) == []  # nothing of the group is left either way
        # The whole group got SIGTERM, or only the leader did (the child was killed after).
        assert (tmp_path / "child-got-term").exists() is (not leader_only), leader_only
