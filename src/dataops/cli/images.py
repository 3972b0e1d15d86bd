"""`dataops images ...`."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context


@click.group()
def images() -> None:
    """Task images: the base image, and content-addressed builds of images/*/Dockerfile."""


@images.command("build")
@click.argument("names", nargs=-1)
@click.option("--push", is_flag=True, help="Push to the environment's registry and record digests.")
@click.option("--env", "env", default="dev", show_default=True, help="Environment to push to.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def build(ctx: Context, names: tuple[str, ...], push: bool, env: str, as_json: bool) -> None:
    """Build every task image (or the NAMES given) with a content-addressed tag.

    The tag is a hash of the build inputs (Dockerfile, pinned Python packages, the code and dbt
    project baked in, the base image), so an unchanged image is neither rebuilt nor pushed
    again. With --push, images go to the environment's registry and their digests are recorded
    in .dataops/builds/ENV.json, which the DAG tasks of that environment run."""
    import json
    from dataclasses import asdict

    from dataops.platform.images import ImageBuilder, image_names, record_builds
    from dataops.platform.state import StateDir

    loaded = ctx.loaded()
    known = image_names(loaded.root)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"no images/{unknown[0]}/Dockerfile; known: {', '.join(known)}")
    if push:
        loaded.environment(env)
    builder = ImageBuilder(loaded, ctx.report)
    results = []
    for name in names or known:
        image = builder.build(name)
        if push:
            image = builder.push(image, env)
        results.append(image)
    record = record_builds(StateDir.of(loaded), env, results) if push else None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "images": [asdict(r) | {"ref": r.ref} for r in results],
                    "record": str(record) if record else None,
                },
                indent=2,
            )
        )
        return
    for r in results:
        what = "built" if r.built else "unchanged"
        where = f" -> {r.ref}" if r.ref else ""
        ctx.console.print(f"[green]ok[/] {r.name:<10} {what:<9} {r.local}{where}")
    if record:
        ctx.console.print(f"Recorded in {record}")


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
