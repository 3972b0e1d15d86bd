"""`dataops ci`: slim CI for the dbt project, and the sweeper of CI schemas."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dataops.cli.context import Context, pass_context
from dataops.cli.options import env_option, json_option
from dataops.errors import DataOpsError, ExitCode


@click.group()
def ci() -> None:
    """Continuous integration: build and test what changed, clean up after it."""


@ci.command("dbt")
@env_option("Environment whose warehouse and deployed manifest are the baseline.")
@click.option("--schema", default=None, help="CI schema (default: ci_<current git branch>).")
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="dbt project to test (default: dbt.project_dir of dataops.yml).",
)
@click.option("--keep", is_flag=True, help="Keep the CI schemas afterwards (to inspect them).")
@json_option()
@pass_context
def ci_dbt(
    ctx: Context,
    env: str,
    schema: str | None,
    project_dir: Path | None,
    keep: bool,
    as_json: bool,
) -> None:
    """Slim CI: build and test only the modified dbt models and their descendants.

    Compares the dbt project with the manifest baked into the transform image ENV runs
    (`state:modified+`), prints which models were selected and why, builds and tests them in
    the schema ci_<branch> of ENV's warehouse with every unmodified parent read from ENV's
    published relations (`--defer --favor-state`), then drops the CI schemas. With no baseline
    (ENV runs no transform image yet, or one of another dbt project) it builds and tests every
    node, and says so. It stops before any DDL when a node would be built outside ci_<branch>
    and ci_<branch>_*, and it only ever drops those schemas. Exits 1 when a model or test
    fails. `dataops ci sweep` removes CI schemas a killed run left behind."""
    from dataops.ci.slim_dbt import SlimCi
    from dataops.core.selection import ci_schema_name

    project = ctx.project()
    branch = project.branch or "detached"
    commit = project.commit[:7]
    name = schema or ci_schema_name(branch)
    if name != ci_schema_name(name.removeprefix("ci_")):
        raise DataOpsError(
            f"--schema {name!r} is not a CI schema name",
            "use ci_ followed by lower-case letters, digits and underscores",
            exit_code=ExitCode.USAGE,
        )
    dbt_project = project_dir.resolve() if project_dir else project.loaded.dbt_dir
    if not (dbt_project / "dbt_project.yml").exists():
        raise DataOpsError(
            f"no dbt_project.yml in {dbt_project}",
            "pass --project-dir DIR",
            exit_code=ExitCode.USAGE,
        )
    echo = (
        None if as_json else (lambda line: ctx.console.print(line, markup=False, highlight=False))
    )
    result = SlimCi(ctx.environment(env), ctx.report).run(
        name, dbt_project, f"{branch}@{commit}" if commit else branch, keep=keep, echo=echo
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "schema": result.schema,
                    "baseline": result.baseline,
                    "selected": [
                        {"unique_id": s.unique_id, "reason": s.reason} for s in result.selected
                    ],
                    "executed_models": result.executed_models,
                    "tests": result.tests,
                    "failures": result.failures,
                    "dropped_schemas": result.dropped,
                    "run_results": result.run_results,
                    "ok": result.ok,
                },
                indent=2,
            )
        )
    else:
        if result.dropped:
            ctx.report(f"dropped {', '.join(result.dropped)}")
        elif keep:
            ctx.report(f"kept the CI schemas of {name} (--keep); drop them with dataops ci sweep")
    if not result.ok:
        raise DataOpsError(
            f"slim CI failed in {name}: " + "; ".join(result.failures[:5]),
            "fix the model or its tests; the dbt output above names the failing node",
            exit_code=ExitCode.FAILED,
        )
    if not as_json:
        ctx.console.print(
            f"[green]ok[/] {len(result.executed_models)} model(s) built and "
            f"{result.tests} test(s) passed in {name} (baseline {result.baseline})"
        )


@ci.command("run")
@click.option(
    "--stage",
    "stage",
    default=None,
    help="Run only this stage: validate, lint, unit, build, migrate, integration, "
    "release, promote, smoke.",
)
@click.option(
    "--base",
    default="main",
    show_default=True,
    help="Git ref that lint compares against (changed files only).",
)
@env_option("Environment CI runs in.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Run every stage even when its inputs are unchanged since a pass (passes are still "
    "recorded).",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JUnit XML report here.",
)
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).",
)
@pass_context
def ci_run(
    ctx: Context,
    stage: str | None,
    base: str,
    env: str,
    no_cache: bool,
    junit_path: Path | None,
    summary_path: Path | None,
) -> None:
    """Run the CI stages in order, fail-fast: validate, lint, unit, build, migrate,
    integration (slim dbt), release, promote and smoke (the last three on main only).

    Each stage prints a PASSED/FAILED line with its time; logs, result.json, junit.xml and
    summary.md go to .dataops/ci/runs/<id>/. The release stage records that the dev release
    passed `ci`.

    A stage whose inputs did not change since it passed is skipped, and the line says which
    run passed it: its key is the content of the files it reads (e.g. lint: specs, migrations,
    Dockerfiles, the dbt project; unit: everything but the dbt models, the integration tests
    and the docs), the toolkit's code and lock, and what it reads outside the checkout (the
    release dev runs, the base ref). A changed key runs the stage; so does a key whose earlier
    products are gone (an image no longer in the registry). Slim dbt CI is skipped when dev
    already runs this dbt project, promotion when staging already runs dev's release. Passes
    are recorded in .dataops/ci/cache/; --no-cache runs everything."""
    from datetime import UTC, datetime

    from dataops.ci.stages import CiContext, ProjectPlatform, run_stages, stage_names
    from dataops.clients import git

    if stage and stage not in stage_names():
        raise DataOpsError(
            f"no stage {stage!r}",
            f"use one of: {', '.join(stage_names())}",
            exit_code=ExitCode.USAGE,
        )
    project = ctx.project()
    branch = project.branch or "detached"  # $DATAOPS_CI_BRANCH, else the checkout's
    commit = project.commit or "unknown"
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{commit[:8]}"
    out = project.state.ci_run(run_id)
    loaded = project.loaded
    try:
        dbt_dir = loaded.dbt_dir.relative_to(project.root).as_posix()
    except ValueError:
        dbt_dir = loaded.dbt_dir.as_posix()
    context = CiContext(
        project.root,
        base,
        branch,
        env,
        platform=ProjectPlatform(project),
        dbt_dir=dbt_dir,
        cache_dir=project.state.ci_cache,
        use_cache=not no_cache,
        commit=commit,
        base_commit=git.resolve(project.root, base) or "",
    )
    result = run_stages(
        context,
        out,
        stage,
        lambda line: ctx.console.print(line, markup=False, highlight=False),
        commit,
    )
    for path, name in ((junit_path, "junit.xml"), (summary_path, "summary.md")):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text((out / name).read_text())
    verdict = "[green]CI passed[/]" if result.ok else "[red]CI failed[/]"
    ctx.console.print(f"{verdict} in {result.seconds:.0f}s; report: {out}")
    if not result.ok:
        raise SystemExit(int(ExitCode.FAILED))


@ci.command("sweep")
@env_option("Warehouse to sweep.")
@click.option(
    "--older-than",
    default="24h",
    show_default=True,
    help="Age of CI schemas to drop: 30m, 24h, 7d.",
)
@click.option("--dry-run", is_flag=True, help="List what would be dropped; drop nothing.")
@json_option()
@pass_context
def ci_sweep(ctx: Context, env: str, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Drop CI schemas older than --older-than (left by killed or --keep runs).

    Only schemas `dataops ci dbt` registered (table dataops.ci_schemas) are touched."""
    from dataops.ci.slim_dbt import SlimCi
    from dataops.core.timespan import parse_age

    age = parse_age(older_than)
    swept = SlimCi(ctx.environment(env), ctx.report).sweep(age, dry_run=dry_run)
    if as_json:
        click.echo(
            json.dumps(
                {"dry_run": dry_run, "schemas": [{"schema": s, "created_at": c} for s, c in swept]},
                indent=2,
            )
        )
        return
    verb = "would drop" if dry_run else "dropped"
    for schema, created in swept:
        ctx.console.print(f"{verb} {schema} (created {created})")
    ctx.console.print(
        f"{len(swept)} CI schema(s) older than {older_than} {verb.split()[-1]}"
        if swept
        else f"no CI schema older than {older_than}"
    )


@ci.command("install-hook")
@click.argument("repo", type=click.Path(file_okay=False, path_type=Path))
@pass_context
def ci_install_hook(ctx: Context, repo: Path) -> None:
    """Make the bare git repository REPO a CI remote: every push runs `dataops ci run` for the
    pushed commit in a clean checkout, one push after the other, against this project's
    platform (its state dir). Results: dataops ci status --repo REPO."""
    from dataops.ci import remote as ci_remote

    hook = ci_remote.install(repo, ctx.project().state.root)
    ctx.console.print(f"[green]ok[/] {hook} installed; push to {repo.resolve()} to run CI")


@ci.command("enqueue", hidden=True)
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), required=True)
def ci_enqueue(repo: Path) -> None:
    """(post-receive hook) Queue the pushed commits read from stdin: `old new ref` lines."""
    import sys

    from dataops.ci import remote as ci_remote

    updates: list[tuple[str, str, str]] = [
        tuple(line.split()[:3]) for line in sys.stdin if len(line.split()) >= 3
    ]
    for commit in ci_remote.enqueue(repo, updates):
        click.echo(f"dataops ci: queued {commit[:12]}; see: dataops ci status --repo {repo}")


@ci.command("worker", hidden=True)
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), required=True)
def ci_worker(repo: Path) -> None:
    """(started by the hook) Run the queued commits one at a time."""
    from dataops.ci import remote as ci_remote

    ci_remote.work(repo)


@ci.command("status")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The bare repository made a CI remote by install-hook.",
)
@click.option(
    "--log",
    "show_log",
    default=None,
    metavar="COMMIT",
    help="Print the CI log of this commit (or a prefix of it).",
)
@json_option("Print the results as JSON.")
@pass_context
def ci_status(ctx: Context, repo: Path, show_log: str | None, as_json: bool) -> None:
    """CI results per pushed commit, in push order: queued, running, passed or failed."""
    from dataops.ci import remote as ci_remote

    found = ci_remote.results(repo)
    if show_log:
        matches = [r for r in found if r["commit"].startswith(show_log)]
        if len(matches) != 1 or not matches[0].get("log"):
            raise DataOpsError(
                f"no single CI log for {show_log!r}",
                "dataops ci status --repo R",
                exit_code=ExitCode.USAGE,
            )
        click.echo(Path(matches[0]["log"]).read_text())
        return
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for r in found:
        ctx.console.print(
            f"{r['commit'][:12]} {r['ref']:<24} {r['status']:<8} {r.get('seconds', '')}",
            markup=False,
        )


def register(group: click.Group) -> None:
    group.add_command(ci)
