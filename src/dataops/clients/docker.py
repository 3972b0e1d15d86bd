"""The Docker engine's API on its unix socket, and the `docker` CLI for images."""

from __future__ import annotations

import subprocess

import httpx

DOCKER_SOCKET = "/var/run/docker.sock"
SOURCE_LABEL = "org.dataops.base.source"


def docker_api(timeout: float = 5.0) -> httpx.Client:
    """An HTTP client for the engine's API on its unix socket."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=DOCKER_SOCKET), base_url="http://docker", timeout=timeout
    )


def engine_answers() -> str | None:
    """The engine's version when it answers on the socket, else None."""
    try:
        with docker_api(3.0) as client:
            if client.get("/_ping").text != "OK":
                return None
            return str(client.get("/version").json().get("Version", "?"))
    except (httpx.HTTPError, OSError, ValueError):
        return None


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`docker ARGS...`, output captured, never raising on a non-zero exit."""
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=timeout
    )


def image_inspect(name: str) -> tuple[str, str] | None:
    """(image id, the base-image source label) of a local image, or None."""
    result = docker(
        "image",
        "inspect",
        "--format",
        f'{{{{.Id}}}} {{{{index .Config.Labels "{SOURCE_LABEL}"}}}}',
        name,
    )
    if result.returncode != 0:
        return None
    image_id, _, source = result.stdout.strip().partition(" ")
    return image_id, source
