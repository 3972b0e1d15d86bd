"""Facts about the host (packages, ports, disk) and installing what is missing."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dataops.core.progress import Report
from dataops.errors import NotReadyError

_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


@dataclass(frozen=True)
class Requirement:
    package: str
    program: str  # absolute path or glob of the program the package installs

    @property
    def name(self) -> str:
        return Path(self.program).name


def requirements() -> list[Requirement]:
    text = resources.files("dataops.local").joinpath("apt-packages.txt").read_text()
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            package, program = line.split()
            found.append(Requirement(package, program))
    return found


def find_program(requirement: Requirement) -> str | None:
    """Where the program is: on PATH (plus the sbin folders), or at its absolute location."""
    if "*" in requirement.program:
        matches = sorted(glob.glob(requirement.program))
        return matches[-1] if matches else None
    path = os.environ.get("PATH", "")
    extra = [d for d in _SBIN if d not in path.split(os.pathsep)]
    return shutil.which(requirement.name, path=os.pathsep.join([path, *extra]))


def missing_packages() -> list[Requirement]:
    return [req for req in requirements() if find_program(req) is None]


def is_root() -> bool:
    return os.geteuid() == 0


def apt_install_command(packages: list[str]) -> str:
    prefix = "" if is_root() else "sudo "
    return f"{prefix}apt-get install -y --no-install-recommends {' '.join(packages)}"


def install_packages(packages: list[str], report: Report) -> None:
    """apt-get install as root, with services kept from auto-starting (dataops starts them)."""
    if not packages:
        return
    if not is_root() or not shutil.which("apt-get"):
        raise NotReadyError(
            f"missing Debian packages: {', '.join(packages)}",
            f"{apt_install_command(packages)}  (or run `dataops up` as root to install them)",
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = False
    if not policy.exists():
        # Without this, the packages' maintainer scripts start a system PostgreSQL on 5432, a
        # registry on 5000 and dockerd, competing with the services `dataops up` manages.
        policy.write_text("#!/bin/sh\n# added by dataops while installing packages\nexit 101\n")
        policy.chmod(0o755)
        added_policy = True
    try:
        report(f"apt-get install {' '.join(packages)}")
        result = _apt(["apt-get", "install", "-y", "--no-install-recommends", *packages], env)
        if result.returncode != 0:
            report("apt-get update")
            _apt(["apt-get", "update"], env)
            result = _apt(["apt-get", "install", "-y", "--no-install-recommends", *packages], env)
        if result.returncode != 0:
            raise NotReadyError(
                f"apt-get install {' '.join(packages)} failed:\n{result.stdout[-2000:]}",
                "check the apt sources (/etc/apt/sources.list*) and run the command again",
            )
    finally:
        if added_policy:
            policy.unlink(missing_ok=True)


def _apt(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def ensure_python_packages(root: Path, report: Report) -> bool:
    """Sync this interpreter's venv with the project's lock file when Airflow is missing from it.

    `dataops` can run from an environment without the platform's packages (e.g. installed on its
    own); the services need Airflow, dbt and sqlfluff next to it, at the locked versions.
    """
    bindir = Path(sys.executable).parent
    if (bindir / "airflow").exists():
        return False
    lock = root / "requirements.lock"
    uv = shutil.which("uv", path=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    if not lock.exists() or uv is None:
        raise NotReadyError(
            f"Airflow is not installed in {sys.prefix}",
            "make setup   (creates .venv from requirements.lock), then use .venv/bin/dataops",
        )
    report(f"installing the locked Python packages into {sys.prefix} (uv pip sync)")
    # Byte-compiled at install (see infra/bootstrap.sh).
    sync = [uv, "pip", "sync", "-q", "--compile-bytecode", "--python", sys.executable, str(lock)]
    steps = [sync]
    if (root / "src" / "dataops").is_dir():  # the toolkit's own checkout: editable
        steps.append(
            [uv, "pip", "install", "-q", "--python", sys.executable, "--no-deps", "-e", str(root)]
        )
        # The toolkit's own modules (editable, outside site-packages) too.
        steps.append(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(root / "src" / "dataops")]
        )
    else:  # a project: the pinned toolkit from its vendored wheel
        # Never a cached build of the same version: the vendored file is the truth.
        sync += ["--refresh-package", "dataops", "--find-links", str(root / "vendor")]
    for argv in steps:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise NotReadyError(
                f"{' '.join(argv[:3])} failed: {result.stderr.strip()[-1500:]}",
                "check that PyPI answers, then run `dataops up` again",
            )
    return True


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(port: int, key: str, host: str = "127.0.0.1") -> None:
    """NotReadyError naming the holder of `host:port` and the dataops.yml key to change."""
    if port_is_free(port, host):
        return
    raise NotReadyError(
        f"port {host}:{port} is already in use{describe_holder(port)}",
        f"stop that process (`dataops down` in its project), or change {key} in dataops.yml "
        "(`dataops init --port-offset N` gives a new project ports of its own)",
    )


def holder_project(pid: int) -> Path | None:
    """The dataops project a process belongs to: the folder of the dataops.yml at or above its
    working directory (the platform's services run in their project's folder)."""
    try:
        folder = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    for candidate in (folder, *folder.parents):
        if (candidate / "dataops.yml").is_file():
            return candidate
    return None


def describe_holder(port: int, holder: tuple[int, str] | None = None) -> str:
    """Who holds `port` (`holder`: port_holder's answer, when the caller has it already):
    ' by pid N (command)', naming the other dataops project if it is one."""
    holder = holder or port_holder(port)
    if holder is None:
        return ""
    project = holder_project(holder[0])
    where = f", the platform of the dataops project in {project}" if project else ""
    return f" by pid {holder[0]} ({holder[1][:80]}{where})"


def port_holder(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process listening on TCP `port`, when /proc tells."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    return int(proc.name), cmd
        except OSError:
            continue
    return None


def free_disk_bytes(path: Path) -> int:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def grant_traverse(path: Path, user: str) -> list[Path]:
    """Let `user` reach `path` (search permission on each ancestor it cannot enter).

    PostgreSQL refuses to run as root, so its data directory under the project's state dir must
    be reachable by the `postgres` user even when the checkout sits in a private (0700) folder.
    Only the search bit is granted, with an ACL for that one user where setfacl exists.
    """
    changed: list[Path] = []
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            break
        check = subprocess.run(
            ["runuser", "-u", user, "--", "test", "-x", str(folder)],
            capture_output=True,
            check=False,
        )
        if check.returncode == 0:
            continue
        if shutil.which("setfacl"):
            subprocess.run(["setfacl", "-m", f"u:{user}:x", str(folder)], check=True)
        else:
            folder.chmod(folder.stat().st_mode | 0o001)
        changed.append(folder)
    return changed
