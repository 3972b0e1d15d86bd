"""The one user-facing error type, and the documented exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every `dataops` command (documented in docs/reference/exit-codes.md)."""

    OK = 0
    FAILED = 1  # a check failed (tests, lint, a gate)
    USAGE = 2  # bad arguments or a bad config / spec file
    NOT_READY = 3  # the host or the platform is not ready (missing package, service down)


class DataOpsError(Exception):
    """An error a person can act on: what went wrong (`reason`) and what to do (`instruction`)."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(
        self,
        reason: str,
        instruction: str | None = None,
        *,
        exit_code: ExitCode | None = None,
        log: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.instruction = instruction
        self.log = log
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        parts = [self.reason]
        if self.instruction:
            parts.append(f"To fix: {self.instruction}")
        if self.log:
            parts.append(f"Logs: {self.log}")
        return "\n".join(parts)


class ConfigError(DataOpsError):
    """A config or spec file is invalid; the reason starts with `file:line:col`."""

    exit_code = ExitCode.USAGE


class NotReadyError(DataOpsError):
    """The host or a service is not ready."""

    exit_code = ExitCode.NOT_READY


def tool_message(output: str, lines: int = 3) -> str:
    """The last lines a failed tool printed that say something: a Python traceback's frames
    dropped, its final `Error: reason` kept."""
    said = [
        line.strip()
        for line in output.splitlines()
        if line.strip() and not line.startswith((" ", "\t", "Traceback", "^"))
    ]
    return "\n".join(said[-lines:])
