"""`dataops images ...`."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context


@click.group()
def images() -> None:
    """Task images: the base image (more commands arrive with the task images)."""


@images.command("base")
@click.option("--force", is_flag=True, help="Make the base image again even when it exists.")
@pass_context
def base(ctx: Context, force: bool) -> None:
    """Make sure the base image exists.

    Pulled from the upstream registry when one is reachable; otherwise bootstrapped offline
    from the host's Debian mirror (debootstrap, then docker import). Needs the Docker engine
    (`dataops up` starts it)."""
    from dataops.platform.base_image import ensure_base_image
    from dataops.platform.state import StateDir

    loaded = ctx.loaded()
    state = StateDir.of(loaded)
    state.ensure()
    image = ensure_base_image(loaded.config.platform.base_image, state, ctx.report, force=force)
    verb = "made" if image.changed else "already present"
    ctx.console.print(
        f"[green]ok[/] {image.name} {verb}: {image.image_id[:19]} from {image.source}"
    )


def register(group: click.Group) -> None:
    group.add_command(images)
