"""Options every command group shares, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_ENV = "dev"


def env_option(
    help: str = "Environment (a name under environments: in dataops.yml).",
) -> Callable[[F], F]:
    """`--env NAME` (default dev), passed to the command as `env`."""
    return click.option(
        "--env", "env", default=DEFAULT_ENV, show_default=True, metavar="ENV", help=help
    )


def json_option(help: str = "Print the result as JSON.") -> Callable[[F], F]:
    """`--json`, passed to the command as `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help=help)
