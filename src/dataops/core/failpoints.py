"""Named points where a test can make the task die at once (SIGKILL), to prove crash safety.

`DATAOPS_FAILPOINT=load.before_merge` kills the process when it reaches that point. Before it
dies it writes one line to stderr, so a test can prove the kill happened where it meant.
"""

from __future__ import annotations

import os
import signal
import sys


def failpoint(name: str) -> None:
    if os.environ.get("DATAOPS_FAILPOINT") == name:
        sys.stderr.write(f"failpoint {name}: killing pid {os.getpid()} with SIGKILL\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def pause(name: str) -> None:
    """`DATAOPS_PAUSE=NAME` holds the process at that point for DATAOPS_PAUSE_SECONDS (default
    5), announcing it on stderr, so a test can break something outside at an exact moment."""
    if os.environ.get("DATAOPS_PAUSE") == name:
        import time

        seconds = float(os.environ.get("DATAOPS_PAUSE_SECONDS", "5"))
        sys.stderr.write(f"pausepoint {name}: pausing pid {os.getpid()} for {seconds:.0f}s\n")
        sys.stderr.flush()
        time.sleep(seconds)
