"""Fault injection: `dataops up` killed in the middle of its work; the next run repairs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dataops.local.host import port_is_free
from tests.conftest import DATAOPS, ROOT, run_dataops

pytestmark = pytest.mark.integration


def _free_port_below_ephemeral_range() -> int:
    """A free port the kernel never hands out to outgoing connections.

    A fixed port inside the ephemeral range (55432 was) can be taken between two checks by any
    client socket of the suite's own traffic, and `dataops up` then rightly refuses it.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in range(low - 1, low - 2000, -1):
        if port_is_free(port):
            return port
    raise AssertionError(f"no free TCP port in {low - 2000}-{low - 1}")


def test_up_killed_during_initdb_is_repaired_by_the_next_run(tmp_path: Path) -> None:
    # A second, throw-away cluster on its own port and state dir, so the real platform is untouched.
    port = _free_port_below_ephemeral_range()
    config = tmp_path / "dataops.yml"
    config.write_text((ROOT / "dataops.yml").read_text().replace("port: 5432", f"port: {port}"))
    state = tmp_path / "state"
    env = {**os.environ, "DATAOPS_CONFIG": str(config), "DATAOPS_STATE_DIR": str(state)}
    scratch, data = state / "postgres" / "data.init", state / "postgres" / "data"

    proc = subprocess.Popen(
        [*DATAOPS, "up", "postgres", "--no-install"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (scratch / "PG_VERSION").exists():
            assert proc.poll() is None, "dataops up ended before initdb got going"
            assert time.monotonic() < deadline, "initdb never started"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)  # dataops, runuser and initdb together
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # The kill happened mid-initialization: a half-made scratch cluster, no real one.
    assert proc.returncode == -signal.SIGKILL
    assert scratch.exists() and not (data / "PG_VERSION").exists()

    try:
        again = run_dataops(
            "up", "postgres", "--no-install", env={"DATAOPS_STATE_DIR": str(state)}, config=config
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert not scratch.exists()
        assert (data / "PG_VERSION").exists()
        status = run_dataops(
            "status", "--json", env={"DATAOPS_STATE_DIR": str(state)}, config=config
        )
        postgres = next(s for s in json.loads(status.stdout)["services"] if s["name"] == "postgres")
        assert postgres["address"] == f"127.0.0.1:{port}"
        assert (postgres["state"], postgres["health"]) == ("running", "healthy")
    finally:
        down = run_dataops("down", "postgres", env={"DATAOPS_STATE_DIR": str(state)}, config=config)
        assert down.returncode == 0, down.stderr
