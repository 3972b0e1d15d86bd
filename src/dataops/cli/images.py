"""`dataops images ...`."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context
from dataops.cli.options import env_option, json_option


@click.group()
def images() -> None:
    """Task images: the base image, and content-addressed builds of images/*/ (each folder's own
    Dockerfile, or the shared images/task.Dockerfile)."""


@images.command("build")
@click.argument("names", nargs=-1)
@click.option("--push", is_flag=True, help="Push to the environment's registry and record digests.")
@env_option("Environment to push to.")
@json_option()
@pass_context
def build(ctx: Context, names: tuple[str, ...], push: bool, env: str, as_json: bool) -> None:
    """Build every task image (or the NAMES given) with a content-addressed tag.

    The tag is a hash of the build inputs (Dockerfile, pinned Python packages, the code and dbt
    project baked in, the base image), so an unchanged image is neither rebuilt nor pushed
    again. With --push, images go to the environment's registry (each pushed while the next one
    builds) and their digests are recorded in the build record of the checkout's branch, which
    `release create --env ENV` makes a release of: main's is .dataops/builds/ENV.json, any other
    branch's .dataops/builds/branches/BRANCH/ENV.json, so a branch build never changes what
    main releases. Pushing changes nothing an environment runs (images are content-addressed)."""
    import json
    from dataclasses import asdict

    from dataops.release.images import ImageBuilder, build_all, image_names, record_builds

    project = ctx.project()
    known = image_names(project.root)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"no image folder images/{unknown[0]}/; known: {', '.join(known)}")
    target = ctx.environment(env) if push else None
    builder = ImageBuilder(project, ctx.report)
    results = build_all(builder, list(names or known), target)
    record = record_builds(target, results) if target is not None else None
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
    from dataops.local.base_image import ensure_base_image

    project = ctx.project()
    project.state.ensure()
    config = project.config.platform.base_image
    image = ensure_base_image(config, project.state, ctx.report, force=force)
    verb = "made" if image.changed else "already present"
    ctx.console.print(
        f"[green]ok[/] {image.name} {verb}: {image.image_id[:19]} from {image.source}"
    )


def register(group: click.Group) -> None:
    group.add_command(images)
