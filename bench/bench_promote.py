"""Benchmark: promoting a release's images registry-to-registry, by digest.

Run (platform up, a dev release made: `make demo`, or `dataops images build --push --env dev`
and `dataops release create --env dev`):
  .venv/bin/python bench/bench_promote.py

Starts two scratch registries (CNCF distribution, ports 5091 and 5092, storage in a temp dir)
and measures, for the images of dev's active release:
  1. dataops' copy (OCI HTTP API, no Docker daemon) into the empty registry;
  2. the same copy again, now that the registry holds every layer;
  3. `docker pull` + `docker tag` + `docker push` into the other empty registry.
Bytes are what the target registry received: counted by dataops for 1 and 2, and the size of
the target's blob store for 3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dataops.clients.oci import CopyStats, RegistryClient, copy_image  # noqa: E402


def start_registry(folder: Path, port: int) -> subprocess.Popen[bytes]:
    config = folder / f"config-{port}.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / str(port)}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    program = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    process = subprocess.Popen(
        [program, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"registry on {port} did not start")


def blob_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("data") if p.is_file())


def main() -> None:
    active = json.loads((ROOT / ".dataops" / "releases" / "active-dev.json").read_text())
    images = active["images"]
    source = RegistryClient("http://127.0.0.1:5001", name="dev")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fresh = start_registry(folder, 5091)
        docker_target = start_registry(folder, 5092)
        try:
            target = RegistryClient("http://127.0.0.1:5091", name="bench")
            rows = []
            for label in ("dataops copy, empty registry", "dataops copy, layers present"):
                stats = CopyStats()
                started = time.monotonic()
                for name, info in images.items():
                    copy_image(
                        source,
                        target,
                        f"dataops/{name}",
                        info["digest"],
                        info["content_hash"],
                        stats,
                    )
                rows.append((label, time.monotonic() - started, stats.bytes_sent))
            started = time.monotonic()
            for name, info in images.items():
                ref = info["ref"]
                remote = f"127.0.0.1:5092/dataops/{name}:{info['content_hash']}"
                subprocess.run(["docker", "pull", "-q", ref], check=True, capture_output=True)
                subprocess.run(["docker", "tag", ref, remote], check=True)
                subprocess.run(["docker", "push", "-q", remote], check=True, capture_output=True)
                subprocess.run(["docker", "rmi", remote], capture_output=True, check=False)
            rows.append(
                (
                    "docker pull + tag + push, empty registry",
                    time.monotonic() - started,
                    blob_bytes(folder / "5092"),
                )
            )
        finally:
            for process in (fresh, docker_target):
                process.terminate()
                process.wait()
    print(f"{len(images)} images of release {active['release'][:19]}")
    print(f"{'method':<42} {'time':>8} {'bytes sent':>14}")
    for label, seconds, sent in rows:
        print(f"{label:<42} {seconds:>7.2f}s {sent / 1e6:>11.1f} MB")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
