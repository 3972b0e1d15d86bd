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
