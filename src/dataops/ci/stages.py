"""`dataops ci run`: the CI stages in order, fail-fast, with a JUnit report and a summary.

Every stage is a `dataops` (or pytest) command run as a subprocess of the checkout being
tested, with its output in a log of its own; the same stages run from the git hook, GitHub
Actions and GitLab CI.

Work that did not change is skipped at two levels, and the summary says why each time:
- **A stage is keyed by the content it reads**: the bytes of the files it depends on (git's
  tracked and untracked-not-ignored files under its pathspecs), the toolkit's own code and lock,
  the Python version, and the facts outside the checkout it depends on (the release dev runs,
  the base ref lint compares with). A stage that passed with the same key is skipped, naming the
  run that passed it; a changed key runs it. Passes are recorded in `.dataops/ci/cache/`, so a
  fresh clone of the same commit (the git hook's, a hosted runner with the state dir) skips too.
- **Some stages know from the platform that they have nothing to do**: slim dbt CI when dev
  already runs a transform image of this exact dbt project, the release stage when dev already
  runs this commit's images, promotion when staging already runs dev's release.
- The commands themselves skip unchanged images (content hash) and models (`state:modified+`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataops.ci.report import CiRun, StageResult, junit, summary
from dataops.core.branches import CI_BRANCH_VARIABLE, MAIN_BRANCH
from dataops.core.helm import HELM_DIR
from dataops.core.promotion import short
from dataops.project.state import atomic_write

if TYPE_CHECKING:
    from dataops.project.environment import Project


# What every stage reads besides its own files: the toolkit that runs it.
TOOLKIT = ("src/", "pyproject.toml", "requirements.lock", "dataops.yml")


@dataclass(frozen=True)
class Stage:
    name: str
    what: str
    argv: Callable[[CiContext], list[str] | None]  # None: skipped (the note says why)
    note: Callable[[str], str] = lambda output: ""
    skip_note: Callable[[CiContext], str] = lambda ctx: ""
    # The git pathspecs whose content the stage reads (on top of TOOLKIT); None: not cached.
    reads: Callable[[CiContext], tuple[str, ...]] | None = None
    # What else the stage's result depends on, outside the checkout (part of the key).
    facts: Callable[[CiContext], dict[str, Any]] = lambda ctx: {}
    # A reason the stage has nothing to do, known from the platform (checked before the key).
    done_already: Callable[[CiContext], str | None] = lambda ctx: None
    # On a key hit: a reason to run anyway (what the earlier pass produced is gone), or None.
    stale: Callable[[CiContext, dict[str, Any]], str | None] = lambda ctx, record: None


class Platform:
    """What the stages' skip decisions read outside the checkout (images dev runs and was
    built, what is in a registry); the CLI passes the real one, over the project's state."""

    def running_images(self, env: str) -> dict[str, Any]:
        return {}

    def built_images(self, env: str) -> dict[str, Any]:
        return {}

    def active_release(self, env: str) -> str | None:
        return None

    def has_image(self, env: str, name: str, tag: str, digest: str) -> bool:
        return False


class ProjectPlatform(Platform):
    """The real facts, from the project's state dir and the environment's registry."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def running_images(self, env: str) -> dict[str, Any]:
        return dict(self.project.environment(env).running_images())

    def built_images(self, env: str) -> dict[str, Any]:
        """The checkout's branch's build record (main's is the shared one)."""
        return dict(self._read(self.project.environment(env).builds_file).get("images") or {})

    def active_release(self, env: str) -> str | None:
        release = self._read(self.project.state.active_release(env)).get("release")
        return str(release) if release else None

    def has_image(self, env: str, name: str, tag: str, digest: str) -> bool:
        from dataops.errors import DataOpsError

        try:
            with self.project.environment(env).registry() as client:
                return bool(client.manifest_digest(f"dataops/{name}", tag) == digest)
        except (DataOpsError, OSError):
            return False  # unreachable or refused: build (and push) again


@dataclass
class CiContext:
    root: Path
    base: str
    branch: str
    env: str = "dev"
    platform: Platform = field(default_factory=Platform)
    dbt_dir: str = "dbt_project"
    cache_dir: Path | None = None  # where passes are recorded; None: nothing is cached
    use_cache: bool = True  # False (--no-cache): every stage runs, passes are still recorded
    commit: str = ""
    base_commit: str = ""  # what --base resolves to ("" when it does not resolve)

    @property
    def shared(self) -> bool:
        """Only main's CI changes the shared dev environment (migrations, its release);
        every other branch builds into its own build record and tests in its own ci_<branch>
        scope (and `release create`, `promote`, `rollback` refuse it anyway)."""
        return self.branch == MAIN_BRANCH


def _dataops(*args: str) -> list[str]:
    return [sys.executable, "-m", "dataops.cli.main", *args]


def _json(output: str) -> Any:
    start = min((i for i in (output.find("{"), output.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        return json.loads(output[start:])
    except ValueError:
        return None


def _build_note(output: str) -> str:
    data = _json(output)
    if not isinstance(data, dict):
        return ""
    images = data.get("images", [])
    built = [i["name"] for i in images if i.get("built")]
    unchanged = [i["name"] for i in images if not i.get("built")]
    parts = []
    if built:
        parts.append(f"built {', '.join(built)}")
    if unchanged:
        parts.append(
            f"skipped {', '.join(unchanged)}: unchanged since the last build (content hash)"
        )
    return "; ".join(parts)


def _migrate_note(output: str) -> str:
    data = _json(output)
    if isinstance(data, list):
        if data and "ms" not in data[0]:  # a plan (an apply reports each one's ms)
            return f"would apply {', '.join(a['script'] for a in data)} (plan only)"
        return f"applied {', '.join(a['script'] for a in data)}" if data else "nothing to apply"
    return ""


def _dbt_note(output: str) -> str:
    data = _json(output)
    if not isinstance(data, dict):
        return ""
    if not data.get("selected"):
        return "skipped dbt: no model changed since the release dev runs (state:modified+)"
    return (
        f"built {len(data.get('executed_models', []))} model(s) "
        f"(state:modified+), {data.get('tests', 0)} test(s) passed"
    )


def _release_note(output: str) -> str:
    data = _json(output)
    if isinstance(data, dict) and data.get("release"):
        state = "new" if data.get("new") else "unchanged since the last run"
        return f"release {short(data['release'])} ({state})"
    return ""


def _smoke_note(output: str) -> str:
    data = _json(output)
    if isinstance(data, dict) and data.get("runs"):
        return f"{len(data['runs'])} run(s) passed in staging: " + ", ".join(
            r["pipeline"] for r in data["runs"]
        )
    return ""


def _project_files(c: CiContext) -> tuple[str, ...]:
    """What validate and lint read: specs, migrations, Dockerfiles, the dbt project."""
    return ("dags/", "migrations/", "images/", f"{c.dbt_dir}/", ":(glob)**/.sqlfluff")


def _unit_files(c: CiContext) -> tuple[str, ...]:
    """The project's tests (tests/project) read its specs and DAG stubs, its dbt project (the
    selections must match nodes), dataops.yml (TOOLKIT), the Helm values rendered from it, and
    the project's own scripts (scripts/), which its tests may test."""
    return ("dags/", f"{c.dbt_dir}/", "tests/project/", "scripts/", f"{HELM_DIR}/")


def _digests(images: dict[str, Any]) -> dict[str, str]:
    return {name: str(image.get("digest")) for name, image in sorted(images.items())}


def _images_gone(c: CiContext, record: dict[str, Any]) -> str | None:
    """The build a cached pass pushed must still be what dev's tasks would run next and still
    be in dev's registry; otherwise build again."""
    built = c.platform.built_images(c.env)
    for image in (record.get("output") or {}).get("images", []):
        name, digest = image.get("name"), image.get("digest")
        if (built.get(name) or {}).get("digest") != digest:
            return f"the build record for {c.env} no longer names {name}@{str(digest)[:19]}"
        if not c.platform.has_image(c.env, name, image.get("content_hash", ""), digest):
            return f"{c.env}'s registry no longer has {name}@{str(digest)[:19]}"
    return None


def _same_dbt_project(c: CiContext) -> str | None:
    """Slim CI compares the project with the manifest baked into the transform image the
    environment runs: when this build's transform image is that very image (same content hash,
    which covers the whole dbt project), nothing can be modified."""
    running = c.platform.running_images(c.env).get("transform") or {}
    built = c.platform.built_images(c.env).get("transform") or {}
    if running.get("content_hash") and running.get("content_hash") == built.get("content_hash"):
        return (
            f"{c.env} already runs this dbt project (transform image "
            f"{running['content_hash'][:12]}): no model is modified"
        )
    return None


def _release_gone(env: str) -> Callable[[CiContext, dict[str, Any]], str | None]:
    def stale(c: CiContext, record: dict[str, Any]) -> str | None:
        output = record.get("output") or {}
        release = output.get("release") or output.get("release_id")
        active = c.platform.active_release(env)
        if release and active != release:
            return f"{env} runs {short(active) if active else 'no release'}, not {short(release)}"
        return None

    return stale


def _staging_runs_dev(c: CiContext) -> str | None:
    dev, staging = c.platform.active_release(c.env), c.platform.active_release("staging")
    if dev and dev == staging:
        return f"staging already runs {c.env}'s release {short(dev)}"
    return None


STAGES: tuple[Stage, ...] = (
    Stage(
        "validate",
        "dataops.yml, pipeline specs, migration files",
        lambda c: _dataops("validate"),
        reads=_project_files,
    ),
    Stage(
        "lint",
        "sqlfluff, hadolint, specs, migrations (files changed since --base)",
        lambda c: _dataops("lint", "--base", c.base),
        reads=_project_files,
        facts=lambda c: {"base": c.base, "base_commit": c.base_commit},
    ),
    Stage(
        "unit",
        "the project's tests: DAG integrity and policy, dbt selections, smoke stages",
        # -v: the log names every check and the pipeline it checked (a project has few).
        lambda c: [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/project"],
        reads=_unit_files,
    ),
    Stage(
        "build",
        "build and push the task images to dev",
        lambda c: _dataops("images", "build", "--push", "--env", c.env, "--json"),
        note=_build_note,
        reads=lambda c: ("images/", f"{c.dbt_dir}/"),
        facts=lambda c: {"env": c.env},
        stale=_images_gone,
    ),
    Stage(
        "migrate",
        "apply dev's migrations (main); plan them, touching nothing (other branches)",
        lambda c: _dataops("migrate", "apply" if c.shared else "plan", "--env", c.env, "--json"),
        note=_migrate_note,
        reads=lambda c: ("migrations/",),
        facts=lambda c: {"shared": c.shared, "release": c.platform.active_release(c.env)},
    ),
    Stage(
        "integration",
        "slim dbt CI in dev (modified models and descendants)",
        lambda c: _dataops("ci", "dbt", "--env", c.env, "--json"),
        note=_dbt_note,
        reads=lambda c: (f"{c.dbt_dir}/",),
        facts=lambda c: {
            "baseline": (c.platform.running_images(c.env).get("transform") or {}).get("digest")
        },
        done_already=_same_dbt_project,
    ),
    Stage(
        "release",
        "create the dev release of this build and activate it in dev; record ci (main only)",
        lambda c: (
            _dataops("release", "create", "--env", c.env, "--json", "--passed-check", "ci")
            if c.shared
            else None
        ),
        note=_release_note,
        skip_note=lambda c: f"branch {c.branch!r} is not main: it never changes what dev runs",
        reads=lambda c: ("migrations/", f"{c.dbt_dir}/", "dags/"),
        facts=lambda c: {
            "commit": c.commit,
            "images": _digests(c.platform.built_images(c.env)),
        },
        stale=lambda c, record: _release_gone(c.env)(c, record),
    ),
    Stage(
        "promote",
        "promote to staging (main branch only)",
        lambda c: _dataops("promote", "--to", "staging", "--json") if c.shared else None,
        skip_note=lambda c: f"branch {c.branch!r} is not main",
        done_already=_staging_runs_dev,
    ),
    Stage(
        "smoke",
        "real runs of the release in staging's Airflow; records prod's smoke gate (main only)",
        lambda c: _dataops("release", "smoke", "--env", "staging", "--json") if c.shared else None,
        note=_smoke_note,
        skip_note=lambda c: f"branch {c.branch!r} is not main",
        reads=lambda c: (),
        facts=lambda c: {"staging": c.platform.active_release("staging")},
        stale=_release_gone("staging"),
    ),
)


def stage_names() -> list[str]:
    return [s.name for s in STAGES]


def stage_key(ctx: CiContext, stage: Stage) -> str | None:
    """The stage's key: the bytes of every file it reads, the toolkit's code and lock, the
    Python version and its facts. None for a stage that is not cached."""
    if stage.reads is None:
        return None
    specs = [*TOOLKIT, *stage.reads(ctx)]
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *specs],
        cwd=ctx.root,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        return None  # not a git checkout: nothing is cached
    digest = hashlib.sha256()
    header = {"stage": stage.name, "python": platform.python_version(), **stage.facts(ctx)}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
        path = ctx.root / name
        if path.is_symlink():
            content = b"link:" + os.readlink(path).encode()
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).digest()
        else:
            continue  # deleted in the working tree: not read
        digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()


def _cache_file(ctx: CiContext, stage: Stage, key: str) -> Path | None:
    return ctx.cache_dir / stage.name / f"{key[:40]}.json" if ctx.cache_dir else None


def _cached_pass(
    ctx: CiContext, stage: Stage, key: str | None, echo: Callable[[str], None]
) -> str | None:
    """The note of a skip: an earlier pass with the same key whose products are still there."""
    path = _cache_file(ctx, stage, key) if key and ctx.use_cache else None
    if path is None:
        return None
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None  # never passed, or a record an interrupted write left: run the stage
    reason = stage.stale(ctx, record)
    if reason:
        echo(f"  {stage.name:<12} unchanged since run {record.get('run')}, but {reason}: run it")
        return None
    return (
        f"unchanged since run {record.get('run')} passed it "
        f"(commit {str(record.get('commit'))[:8]}, key {key[:12] if key else ''})"
        + (f"; then: {record['note']}" if record.get("note") else "")
    )


def _record_pass(ctx: CiContext, stage: Stage, key: str | None, run: str, output: str) -> None:
    path = _cache_file(ctx, stage, key) if key else None
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "run": run,
        "commit": ctx.commit,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": stage.note(output),
        "output": _json(output),
    }
    atomic_write(path, json.dumps(record, indent=2, default=str) + "\n")


def run_stages(
    ctx: CiContext,
    out_dir: Path,
    only: str | None,
    echo: Callable[[str], None],
    commit: str,
) -> CiRun:
    started = time.monotonic()
    run = CiRun(
        id=out_dir.name,
        commit=commit,
        branch=ctx.branch,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = False
    for stage in STAGES:
        if only and stage.name != only:
            continue
        if failed:
            run.stages.append(StageResult(stage.name, "not run", note="an earlier stage failed"))
            continue
        began = time.monotonic()
        argv = stage.argv(ctx)
        key = stage_key(ctx, stage) if argv is not None else None
        why = None
        if argv is None:
            why = stage.skip_note(ctx)
        elif ctx.use_cache:
            why = stage.done_already(ctx) or _cached_pass(ctx, stage, key, echo)
        if why is not None:
            result = StageResult(stage.name, "skipped", time.monotonic() - began, note=why)
            echo(f"- {stage.name:<12} skipped: {result.note}")
            run.stages.append(result)
            continue
        assert argv is not None
        echo(f"> {stage.name:<12} {stage.what}")
        log = out_dir / f"{stage.name}.log"
        done = subprocess.run(
            argv,
            cwd=ctx.root,
            # The stage's commands act for the run's branch (their build record, and what
            # release create and promote allow), whatever git says of the checkout.
            env={**os.environ, "PYTHONUNBUFFERED": "1", CI_BRANCH_VARIABLE: ctx.branch},
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - began
        log.write_text(f"$ {' '.join(argv)}\n{done.stdout}\n--- stderr ---\n{done.stderr}")
        if done.returncode == 0:
            result = StageResult(stage.name, "passed", seconds, stage.note(done.stdout), str(log))
            echo(
                f"  {stage.name:<12} PASSED in {seconds:.1f}s"
                + (f": {result.note}" if result.note else "")
            )
            _record_pass(ctx, stage, key, run.id, done.stdout)
        else:
            tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-20:])
            result = StageResult(stage.name, "failed", seconds, tail, str(log))
            echo(f"  {stage.name:<12} FAILED in {seconds:.1f}s (exit {done.returncode}); log {log}")
            for line in tail.splitlines():
                echo(f"    {line}")
            failed = True
        run.stages.append(result)
    run.seconds = time.monotonic() - started
    atomic_write(out_dir / "result.json", json.dumps(asdict(run), indent=2) + "\n")
    atomic_write(out_dir / "junit.xml", junit(run))
    atomic_write(out_dir / "summary.md", summary(run))
    return run
