"""`dataops release`, `dataops promote`, `dataops rollback`."""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from dataops.cli.context import Context, pass_context
from dataops.cli.options import env_option, json_option
from dataops.core.promotion import short
from dataops.errors import DataOpsError

if TYPE_CHECKING:
    from dataops.release.releases import Releases


def _releases(ctx: Context) -> Releases:
    from dataops.release.releases import Releases

    return Releases(ctx.project(), ctx.report)


@click.group()
def release() -> None:
    """Releases: immutable records of what was built and tested together (image digests, git
    commit, dbt manifest hash, migration version), stored by digest in the registry."""


@release.command()
@env_option()
@json_option()
@click.option(
    "--passed-check",
    "passed_check",
    default=None,
    metavar="NAME",
    help="Also record that check NAME passed (dataops ci run records `ci`).",
)
@pass_context
def create(ctx: Context, env: str, as_json: bool, passed_check: str | None) -> None:
    """Make a release of ENV's current build (`images build --push --env ENV`) and make it
    the release ENV runs. The same build gives the same release id.

    The release carries the dags/ and migrations/ folders as they are, and each pipeline spec
    compiled (its validated form, so a deployment parses its DAGs without the YAML).

    Only a checkout of main (or $DATAOPS_CI_BRANCH=main, as main's CI jobs set it) may make a
    release: on any other branch it is refused (exit 2) before anything changes. Merge the
    branch and let main's CI release it; test a branch with `dataops ci run`."""
    releases, environment = _releases(ctx), ctx.environment(env)
    release_id, record, new = releases.create(environment)
    if passed_check:
        releases.check(environment, release_id, passed_check, True, "recorded by release create")
    if as_json:
        click.echo(json.dumps({"release": release_id, "new": new, **record.document()}, indent=2))
        return
    verb = "created" if new else "already existed:"
    ctx.console.print(f"[green]ok[/] release {short(release_id)} {verb} {release_id}")
    ctx.console.print(
        f"active in {env}; commit {record.git_commit[:12]}, migration V{record.migration_version}"
    )


@release.command()
@click.argument("release_ref", required=False)
@env_option()
@json_option()
@pass_context
def show(ctx: Context, release_ref: str | None, env: str, as_json: bool) -> None:
    """Show a release (default: the one ENV runs) and its history in ENV."""
    releases, environment = _releases(ctx), ctx.environment(env)
    release_id = releases.resolve(environment, release_ref)
    record = releases.record(environment, release_id).document()
    history = [asdict(e) for e in releases.history(environment, release_id)]
    if as_json:
        click.echo(
            json.dumps({"release": release_id, "record": record, "history": history}, indent=2)
        )
        return
    ctx.console.print(f"release {release_id}")
    ctx.console.print(json.dumps(record, indent=2), markup=False, highlight=False)
    for entry in history:
        state = "ok" if entry["ok"] else "FAILED"
        ctx.console.print(
            f"  {entry['at']} {entry['action']} {state} by {entry['actor']}", markup=False
        )


@release.command("list")
@env_option()
@json_option()
@pass_context
def list_(ctx: Context, env: str, as_json: bool) -> None:
    """ENV's release history, oldest first: every creation, check, promotion, refusal and
    rollback with who, when and the gate results."""
    from dataops.core.promotion import active_release

    entries = _releases(ctx).history(ctx.environment(env))
    history = [asdict(e) for e in entries]
    active = active_release(entries)
    if as_json:
        click.echo(json.dumps({"env": env, "active": active, "history": history}, indent=2))
        return
    for entry in history:
        state = "ok" if entry["ok"] else "FAILED"
        ctx.console.print(
            f"{entry['at']} {short(entry['release_id'])} {entry['action']:<14} "
            f"{state:<6} {entry['actor']}",
            markup=False,
        )
    ctx.console.print(f"active in {env}: {short(active) if active else 'none'}")


@release.command()
@click.option(
    "--release", "release_ref", default=None, help="Release id or prefix (default: the active one)."
)
@click.option("--name", required=True, help="The check's name (gates.require_checks).")
@click.option("--passed/--failed", "passed", required=True, help="The check's result.")
@click.option("--detail", default="", help="What was checked, or why it failed.")
@env_option()
@pass_context
def check(
    ctx: Context, release_ref: str | None, name: str, passed: bool, detail: str, env: str
) -> None:
    """Record the result of a check of a release in ENV (CI records `ci` in dev).

    Checks gate promotion, so only main records them: on another branch this is refused with
    exit 2."""
    releases, environment = _releases(ctx), ctx.environment(env)
    releases.require_main(f"release check --env {env}")  # before asking anything
    release_id = releases.resolve(environment, release_ref)
    releases.check(environment, release_id, name, passed, detail)
    ctx.console.print(f"recorded check {name} {'passed' if passed else 'failed'} in {env}")


@release.command()
@click.option("--release", "release_ref", default=None, help="Default: the active one.")
@env_option()
@json_option()
@pass_context
def smoke(ctx: Context, release_ref: str | None, env: str, as_json: bool) -> None:
    """Smoke-test the release ENV runs, for real, and record the `smoke` check (prod's gate).

    Every image manifest and blob is served by digest from ENV's registry; ENV's migrations
    (from the release) are current with no drift; then the pipelines of ENV's `smoke.stages`
    in dataops.yml run in ENV's own Airflow deployment against ENV's warehouse. The check
    records the DAG run ids and the release each ran. Only main records it: on another branch
    this is refused with exit 2 before anything runs."""
    from dataops.release.smoke import Smoke

    releases, environment = _releases(ctx), ctx.environment(env)
    releases.require_main(f"release smoke --env {env}")  # it records prod's gate
    release_id = releases.resolve(environment, release_ref)
    problems, runs = Smoke(releases).check(environment, release_id)
    detail = "; ".join(problems) or "ok: " + ", ".join(f"{r.pipeline}={r.run_id}" for r in runs)
    releases.check(environment, release_id, "smoke", not problems, detail)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "release": release_id,
                    "env": env,
                    "passed": not problems,
                    "problems": problems,
                    "runs": [asdict(r) for r in runs],
                },
                indent=2,
            )
        )
    if problems:
        raise DataOpsError(
            f"smoke test of the release in {env} failed: " + "; ".join(problems),
            "read the failed runs' logs in the web UI; fix, then promote a new release",
        )
    if not as_json:
        for r in runs:
            ctx.console.print(
                f"  {r.pipeline:<10} {r.run_id} {r.state} (release {short(r.bundle_version)})"
            )
        ctx.console.print(
            f"[green]ok[/] smoke test passed in {env}: {len(runs)} real run(s) (recorded)"
        )


@click.command()
@click.option(
    "--to",
    "target",
    required=True,
    help="Environment to promote into (its gates.promote_from is the source).",
)
@click.option(
    "--release",
    "release_ref",
    default=None,
    help="Release id or prefix (default: the one the source runs).",
)
@click.option("--approve", is_flag=True, help="Approve the promotion (prod requires it).")
@click.option(
    "--approver",
    default=None,
    help="Who approves (default: $DATAOPS_APPROVER, else the login name).",
)
@json_option()
@pass_context
def promote(
    ctx: Context,
    target: str,
    release_ref: str | None,
    approve: bool,
    approver: str | None,
    as_json: bool,
) -> None:
    """Promote a release to TARGET: check the gates, copy every image registry-to-registry by
    digest (blobs the target has are not sent), apply TARGET's migrations, then make the
    release active there. On any failure the previous release stays active.

    Main only: on any other branch (the gates come from the checkout's dataops.yml) it is
    refused (exit 2) before anything changes; check out main, or let main's CI promote."""
    who = approver or os.environ.get("DATAOPS_APPROVER") or getpass.getuser()
    result = _releases(ctx).promote(ctx.environment(target), release_ref, approve, who)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "release": result.release_id,
                    "env": target,
                    "images": result.images,
                    "gates": result.gates,
                    "migrations": result.migrations,
                    "blobs_sent": result.stats.blobs_sent,
                    "blobs_skipped": result.stats.blobs_skipped,
                    "bytes_sent": result.stats.bytes_sent,
                },
                indent=2,
            )
        )
        return
    for gate, outcome in result.gates.items():
        ctx.console.print(f"  gate {gate}: {outcome}", markup=False)
    ctx.console.print(
        f"[green]ok[/] release {short(result.release_id)} active in {target}: "
        f"{len(result.images)} image(s), {result.stats.blobs_sent} blob(s) sent "
        f"({result.stats.bytes_sent / 1e6:.1f} MB), {result.stats.blobs_mounted} mounted from "
        f"another repository, {result.stats.blobs_skipped} already there; "
        f"migrations applied: {', '.join(result.migrations) or 'none'}"
    )


@click.command()
@env_option()
@click.option(
    "--to",
    "to",
    default=None,
    help="Release id or prefix (default: the one active before the current one).",
)
@click.option("--approve", is_flag=True, help="Approve the rollback (prod requires it).")
@click.option(
    "--approver",
    default=None,
    help="Who approves (default: $DATAOPS_APPROVER, else the login name).",
)
@pass_context
def rollback(ctx: Context, env: str, to: str | None, approve: bool, approver: str | None) -> None:
    """Make an earlier release active again in ENV: its images and its DAG code. ENV's
    deployment serves it within seconds (the command waits for that); the next DAG run uses
    it. An environment whose promotions need approval needs it for a rollback too
    (--approve). Recorded in the history either way.

    Main only: on any other branch it is refused (exit 2) before anything changes; check out
    main to roll back."""
    started = time.monotonic()
    who = approver or os.environ.get("DATAOPS_APPROVER") or getpass.getuser()
    release_id = _releases(ctx).rollback(ctx.environment(env), to, approve, who)
    ctx.console.print(
        f"[green]ok[/] {env} runs release {short(release_id)} again "
        f"({time.monotonic() - started:.1f}s)"
    )


def register(group: click.Group) -> None:
    group.add_command(release)
    group.add_command(promote)
    group.add_command(rollback)
