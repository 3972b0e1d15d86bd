"""Task images: content-addressed builds, pushes to an environment's registry, build records.

Every image's tag is a hash of its build inputs (Dockerfile, resolved Python pins, the code and
dbt project it bakes in, the base image id), so an unchanged image is never rebuilt or pushed
again. Python packages are installed on the host (uv, from the lock) into a `site/` folder of
the build context: the build needs no network and no pip inside the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from dataops import __version__
from dataops.clients.dbt import (
    check_audit_routing,
    parse_manifest,
    prepare_project,
    targets_of,
)
from dataops.clients.docker import image_inspect
from dataops.clients.oci import RegistryError
from dataops.core import dbt_project
from dataops.core.config import DbtPackages
from dataops.core.progress import Report
from dataops.errors import DataOpsError, NotReadyError
from dataops.project.environment import Environment, Project
from dataops.project.state import atomic_write

PLATFORM = "x86_64-manylinux_2_28"
# The Dockerfile of every image folder that has none of its own (built with TASK=<folder>).
SHARED_DOCKERFILE = "task.Dockerfile"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
DBT_CLIENT = PACKAGE_DIR / "clients" / "dbt.py"
# What of the package a task image carries: task/ and exactly the core modules it imports
# (tests/unit/release/test_image_parts.py checks this against the import graph), and the patches
# of dbt's internals it uses (patches/dbt; not patches/airflow: no image has Airflow); the host's
# modules (releases, promotion, CI, the platform) stay out of the images.
TASK_CORE_MODULES = (
    "config",
    "dbt_artifacts",
    "dbt_project",
    "failpoints",
    "pipeline",
    "schema",
    "yaml_loader",
)
PACKAGE_PARTS = (
    "__init__.py",
    "errors.py",
    "py.typed",
    "task",
    "core/__init__.py",
    *(f"core/{module}.py" for module in TASK_CORE_MODULES),
    "patches/__init__.py",
    "patches/dbt",
)
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class ImageBuild:
    name: str
    content_hash: str
    local: str  # dataops/<name>:<hash>
    built: bool  # False: it already existed
    pushed: bool = False
    repository: str | None = None  # <registry>/dataops/<name>
    digest: str | None = None

    @property
    def ref(self) -> str | None:
        """The pinned reference tasks run: registry/repo@sha256:..."""
        return f"{self.repository}@{self.digest}" if self.repository and self.digest else None


def image_names(root: Path) -> list[str]:
    """The task images: every folder of images/ with a Dockerfile or a requirements.in (those
    without a Dockerfile build from images/task.Dockerfile)."""
    folders = {p.parent for p in (root / "images").glob("*/Dockerfile")}
    folders |= {p.parent for p in (root / "images").glob("*/requirements.in")}
    return sorted(folder.name for folder in folders)


def dockerfile_of(root: Path, name: str) -> Path:
    """The image's own Dockerfile, else the shared one."""
    own = root / "images" / name / "Dockerfile"
    return own if own.exists() else root / "images" / SHARED_DOCKERFILE


class ImageBuilder:
    def __init__(self, project: Project, report: Report) -> None:
        self.project = project
        self.root = project.root
        self.state = project.state
        self.report = report
        self.base = project.config.platform.base_image.name
        bindir = Path(sys.executable).parent
        self.uv = shutil.which("uv", path=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")

    # -- inputs --------------------------------------------------------------------------------
    def _uv(self, *args: str) -> str:
        if self.uv is None:
            raise NotReadyError("uv is not installed in the venv", "make setup")
        result = subprocess.run([self.uv, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DataOpsError(f"uv {args[0]} {args[1]} failed: {result.stderr.strip()[-1500:]}")
        return result.stdout

    def resolve(self, name: str) -> str:
        """The image's requirements pinned to the lock, for the Linux platform of the images."""
        requirements = self.root / "images" / name / "requirements.in"
        if not requirements.exists():
            return ""
        return self._uv(
            "pip",
            "compile",
            "-q",
            "--no-header",
            "--no-annotate",
            str(requirements),
            "--constraint",
            str(self.root / "requirements.lock"),
            "--python-version",
            "3.11",
            "--python-platform",
            PLATFORM,
        )

    def _inputs(self, name: str, pins: str) -> list[tuple[str, Path]]:
        folder = self.root / "images" / name
        files = [(f"images/{name}/{p.name}", p) for p in sorted(folder.iterdir()) if p.is_file()]
        dockerfile = dockerfile_of(self.root, name)
        if dockerfile.parent != folder:
            files.append((f"images/{dockerfile.name}", dockerfile))
        if name == "transform":
            files += self._dbt_inputs()
            # The code that writes the build copy (profile, macros, packages, manifests).
            files += [(f"src/dataops/clients/{DBT_CLIENT.name}", DBT_CLIENT)]
        # The installed toolkit's code (a source checkout's src/dataops, or site-packages in a
        # project that pins the wheel), labelled by its place in the toolkit's repository.
        for part in PACKAGE_PARTS:
            path = PACKAGE_DIR / part
            found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            files += [
                (f"src/dataops/{p.relative_to(PACKAGE_DIR).as_posix()}", p)
                for p in found
                if p.exists()
            ]
        return files

    def dbt_settings(self) -> str:
        """The settings of dataops.yml's `dbt:` section that shape the image's build copy (its
        profile: name, schema, threads, one output per target; the packages mode), so that a
        change to any of them builds the image again."""
        config = self.project.config.dbt
        return json.dumps(
            {
                "profile": config.profile,
                "schema": config.target_schema,
                "threads": config.threads,
                "packages": config.packages.value,
                # In order: the first is the profile's default target, the one the
                # manifests are parsed with.
                "targets": list(targets_of(config, list(self.project.config.environments)).items()),
            },
            sort_keys=True,
        )

    def dbt_dir(self) -> Path:
        return self.project.loaded.dbt_dir

    def _dbt_inputs(self) -> list[tuple[str, Path]]:
        """The dbt project's files (its packages folder only when vendored; else packages.yml,
        the lock and every local package), and the toolkit's dbt macros."""
        source = self.dbt_dir()
        project = dbt_project.read_project(source)
        top = project.generated_dirs()
        if self.project.config.dbt.packages is not DbtPackages.VENDORED:
            top.add(project.packages_install_path)

        def inputs(folder: Path, skip: set[str]) -> list[Path]:
            return [
                p
                for p in sorted(folder.rglob("*"))
                if p.is_file()
                and p.relative_to(folder).parts[0] not in skip
                and "__pycache__" not in p.parts
            ]

        files = [(f"dbt/{p.relative_to(source)}", p) for p in inputs(source, top)]
        for index, folder in enumerate(project.local_package_dirs()):
            files += [
                (f"dbt-package-{index}/{p.relative_to(folder)}", p)
                for p in inputs(folder, {"target", "logs", "dbt_packages"})
            ]
        files.append(("dbt-toolkit/dbt_toolkit.sql", dbt_project.TOOLKIT_MACROS))
        return files

    def content_hash(self, name: str, pins: str) -> str:
        digest = hashlib.sha256()
        base = image_inspect(self.base)
        if base is None:
            raise NotReadyError(f"base image {self.base} is missing", "dataops images base")
        digest.update(f"base {base[0]}\npins\n{pins}\n".encode())
        if name == "transform":
            digest.update(f"dbt-settings {self.dbt_settings()}\n".encode())
        for label, path in self._inputs(name, pins):
            digest.update(
                f"file {label} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode()
            )
        return digest.hexdigest()[:20]

    # -- build ---------------------------------------------------------------------------------
    def build(self, name: str) -> ImageBuild:
        pins = self.resolve(name)
        content = self.content_hash(name, pins)
        local = f"dataops/{name}:{content}"
        if image_inspect(local) is not None:
            self.report(f"{name}: unchanged ({content}), not rebuilt")
            return ImageBuild(name, content, local, built=False)
        self.report(f"{name}: building {local}")
        context = self.state.build_context(name)
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        for label, path in self._inputs(name, pins):
            if label == f"images/{SHARED_DOCKERFILE}":
                shutil.copy2(path, context / "Dockerfile")
            elif label.startswith("images/"):
                shutil.copy2(path, context / path.name)
            elif label.startswith("dbt"):
                continue  # the build copy of the dbt project is made below
            else:
                target = context / "site" / Path(label).relative_to("src")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        site = context / "site"
        site.mkdir(exist_ok=True)
        if name == "transform":
            self._prepare_dbt(context)
        if pins:
            (context / "pins.txt").write_text(pins)
            self._uv(
                "pip",
                "install",
                "-q",
                "--target",
                str(site),
                "--no-deps",
                "--python-version",
                "3.11",
                "--python-platform",
                PLATFORM,
                "-r",
                str(context / "pins.txt"),
            )
        commit = self.project.commit or "unknown"
        shared = dockerfile_of(self.root, name).name == SHARED_DOCKERFILE
        task_arg = ["--build-arg", f"TASK={name}"] if shared else []
        started = time.monotonic()
        result = subprocess.run(
            [
                "docker",
                "build",
                "--network",
                "host",
                "--pull=false",
                "-t",
                local,
                "--build-arg",
                f"BASE_IMAGE={self.base}",
                *task_arg,
                "--build-arg",
                f"SOURCE_COMMIT={commit}",
                "--build-arg",
                f"BUILD_TIME={datetime.now(UTC).isoformat(timespec='seconds')}",
                "--build-arg",
                f"VERSION={__version__}",
                "--label",
                f"org.dataops.content-hash={content}",
                str(context),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        log = self.state.log(f"build-{name}")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise DataOpsError(
                f"image {name}: docker build failed: "
                f"{(result.stderr.strip().splitlines() or ['?'])[-1]}",
                f"read the build log, fix {dockerfile_of(self.root, name).relative_to(self.root)}"
                ", run the build again",
                log=str(log),
            )
        shutil.rmtree(context, ignore_errors=True)
        self.report(f"{name}: built in {time.monotonic() - started:.0f}s")
        return ImageBuild(name, content, local, built=True)

    def _prepare_dbt(self, context: Path) -> None:
        """The build copy of the dbt project, its manifest (what the dbt task defers to and slim
        CI compares against, compiled now so that no dbt parse happens while Airflow parses
        DAGs), and the proof that write-audit-publish holds for every node."""
        config = self.project.config
        prepared = prepare_project(
            config.dbt,
            self.dbt_dir(),
            context / "dbt_project",
            targets_of(config.dbt, list(config.environments)),
            self.state.dbt_logs,
            self.report,
        )
        self.report(f"transform: compiling the dbt manifest of {prepared.name}")
        manifest = parse_manifest(prepared.path, context / "dbt_state", self.state.dbt_logs)
        check_audit_routing(prepared, manifest, context / "dbt_probe", self.state.dbt_logs)
        shutil.rmtree(context / "dbt_probe", ignore_errors=True)

    # -- push ----------------------------------------------------------------------------------
    def push(self, image: ImageBuild, env: Environment) -> ImageBuild:
        registry = env.config.registry
        repository = env.image_repository(image.name)
        with env.registry() as client:
            try:
                existing = client.manifest_digest(f"dataops/{image.name}", image.content_hash)
            except RegistryError:
                existing = None  # docker push says what is wrong with the registry
        if existing:
            self.report(
                f"{image.name}: already in {registry.address} ({existing[:19]}), not pushed"
            )
            return ImageBuild(**{**asdict(image), "repository": repository, "digest": existing})
        remote = f"{repository}:{image.content_hash}"
        subprocess.run(["docker", "tag", image.local, remote], check=True)
        self.report(f"{image.name}: pushing to {registry.address}")
        result = subprocess.run(
            ["docker", "push", remote], capture_output=True, text=True, check=False
        )
        match = _DIGEST.search(result.stdout)
        if result.returncode != 0 or not match:
            raise DataOpsError(
                f"image {image.name}: docker push to {registry.address} failed: "
                f"{(result.stderr.strip().splitlines() or ['?'])[-1]}",
                "check that the registry is up (dataops status) and retry",
            )
        return ImageBuild(
            **{**asdict(image), "pushed": True, "repository": repository, "digest": match.group(1)}
        )


def build_all(
    builder: ImageBuilder, names: list[str], target: Environment | None
) -> list[ImageBuild]:
    """Build `names` in turn and, with a `target`, push each to its registry while the next
    one builds (one push at a time, in order): a push is mostly the engine compressing and
    sending layers, a build mostly the build's own work. Returns when every push is done. A
    failed push stops the builds that follow; a failed or interrupted build cancels the pushes
    not yet started and raises once the running one has finished."""
    if target is None:
        return [builder.build(name) for name in names]
    pushes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push")
    pending: list[Future[ImageBuild]] = []
    try:
        for name in names:
            failed = next((p for p in pending if p.done() and p.exception() is not None), None)
            if failed is not None:
                failed.result()  # raises the push's own error, before another build
            pending.append(pushes.submit(builder.push, builder.build(name), target))
        return [push.result() for push in pending]
    finally:
        pushes.shutdown(wait=True, cancel_futures=True)


def record_builds(env: Environment, builds: list[ImageBuild]) -> Path:
    """Write `builds/<env>.json`: what the environment's DAG tasks run (image refs by digest)."""
    path = env.builds_file
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        current = {"images": {}}
    for build in builds:
        if build.ref:
            current["images"][build.name] = {
                "ref": build.ref,
                "digest": build.digest,
                "content_hash": build.content_hash,
            }
    current["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write(path, json.dumps(current, indent=2, sort_keys=True) + "\n")
    return path
