"""The base image every task image builds on.

Pulled from the upstream registry when one is reachable; otherwise bootstrapped offline from the
Debian mirror apt already uses (debootstrap, then `docker import`), so an air-gapped host works.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dataops.clients.docker import SOURCE_LABEL, docker, image_inspect
from dataops.core.config import BaseImageConfig
from dataops.core.progress import Report
from dataops.errors import NotReadyError
from dataops.project.state import StateDir


@dataclass(frozen=True)
class BaseImage:
    name: str
    image_id: str
    source: str  # "upstream:<ref>" or "debootstrap:<suite>@<mirror>"
    changed: bool


def apt_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The first Debian mirror in apt's sources (deb822 `URIs:` or one-line `deb URL suite`)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for file in files:
        try:
            text = file.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            match = re.match(r"^URIs:\s*(\S+)", line) or re.match(
                r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line
            )
            if match and "/debian" in match.group(1) and "security" not in match.group(1):
                return match.group(1).rstrip("/")
    return "http://deb.debian.org/debian"


def ensure_base_image(
    config: BaseImageConfig,
    state: StateDir,
    report: Report,
    *,
    force: bool = False,
    cancelled: threading.Event | None = None,
) -> BaseImage:
    """The base image, made when missing. `cancelled` (set by a caller that runs this in a
    thread and was interrupted) stops it before each step that starts something new."""

    def check() -> None:
        if cancelled is not None and cancelled.is_set():
            raise KeyboardInterrupt("interrupted: the base image was not made")

    existing = image_inspect(config.name)
    if existing and not force:
        return BaseImage(config.name, existing[0], existing[1], changed=False)
    if config.upstream:
        check()
        report(f"pulling {config.upstream}")
        pulled = docker("pull", config.upstream, timeout=600)
        # A pull killed by the terminal's Ctrl-C (same process group) is not "unreachable".
        if pulled.returncode < 0 or pulled.returncode == 130:
            raise KeyboardInterrupt(f"docker pull {config.upstream} was interrupted")
        if pulled.returncode == 0:
            source = f"upstream:{config.upstream}"
            # Re-label on top of the pulled image so `inspect` can tell where it came from.
            build = subprocess.run(
                ["docker", "build", "--network", "host", "-t", config.name, "-"],
                input=f'FROM {config.upstream}\nLABEL {SOURCE_LABEL}="{source}"\n',
                capture_output=True,
                text=True,
                check=False,
            )
            if build.returncode == 0:
                image = image_inspect(config.name)
                assert image is not None
                return BaseImage(config.name, image[0], source, changed=True)
        reason = (pulled.stderr.strip().splitlines() or ["no answer"])[-1]
        report(f"upstream not reachable ({reason}); bootstrapping the base image offline")
    check()
    return _bootstrap(config, state, report)


def _bootstrap(config: BaseImageConfig, state: StateDir, report: Report) -> BaseImage:
    if not shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        raise NotReadyError("debootstrap is not installed", "apt-get install -y debootstrap")
    mirror = apt_mirror() if config.mirror == "auto" else config.mirror
    rootfs = state.cache / f"rootfs-{config.suite}"
    log = state.log("base-image")
    if rootfs.exists():  # left by an interrupted run: start clean
        shutil.rmtree(rootfs)
    report(f"debootstrap {config.suite} from {mirror} (about a minute)")
    started = time.monotonic()
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(config.packages)}",
        config.suite,
        str(rootfs),
        mirror,
    ]
    with log.open("ab") as handle:
        result = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        shutil.rmtree(rootfs, ignore_errors=True)
        raise NotReadyError(
            f"debootstrap of {config.suite} from {mirror} failed",
            "check that the mirror answers (or set platform.base_image.mirror), then retry",
            log=str(log),
        )
    # Trim what a container never needs: apt lists and caches, docs, man pages.
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        target = rootfs / sub
        if target.exists():
            shutil.rmtree(target)
            target.mkdir(parents=True)
    source = f"debootstrap:{config.suite}@{mirror}"
    report(f"importing the root filesystem as {config.name}")
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
    )
    imported = subprocess.run(
        [
            "docker",
            "import",
            "--change",
            f'LABEL {SOURCE_LABEL}="{source}"',
            "--change",
            "ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            'CMD ["bash"]',
            "-",
            config.name,
        ],
        stdin=tar.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    if tar.stdout:
        tar.stdout.close()
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    if imported.returncode != 0 or tar.returncode != 0:
        raise NotReadyError(f"docker import failed: {imported.stderr.strip()}", log=str(log))
    image = image_inspect(config.name)
    assert image is not None
    report(f"base image {config.name} ready ({time.monotonic() - started:.0f}s, {source})")
    return BaseImage(config.name, image[0], source, changed=True)
