"""A small client of the OCI distribution HTTP API: manifests, blobs, registry-to-registry copy.

No Docker daemon: blobs stream from the source registry to the target one, and a blob the
target already has is not sent again (a HEAD first). Every request is retried on connection
errors and 5xx answers (3 tries, backoff), then fails cleanly naming the registry and the call.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dataops.errors import DataOpsError

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
RETRIES = 3


class RegistryError(DataOpsError):
    pass


@dataclass
class CopyStats:
    blobs_sent: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    bytes_sent: int = 0
    # digest -> a repository of the target that has it, for cross-repository mounts
    seen: dict[str, str] = field(default_factory=dict)


@dataclass
class RegistryClient:
    """One registry: `url` like http://127.0.0.1:5002, optional basic auth."""

    url: str
    auth: tuple[str, str] | None = None
    name: str = ""
    timeout: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.client = httpx.Client(auth=self.auth, timeout=self.timeout)
        self.label = self.name or self.url

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.url}{path}"
        last = ""
        for attempt in range(RETRIES):
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500:
                    return response
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            if attempt < RETRIES - 1:
                self.sleep(0.5 * 2**attempt)
        raise RegistryError(
            f"registry {self.label}: {method} {path} failed after {RETRIES} tries: {last}",
            "check that the registry is up (dataops status), then run the command again",
        )

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code == 401:
            raise RegistryError(
                f"registry {self.label}: {what}: 401 unauthorized",
                "check the registry credentials (the *_env variables of dataops.yml)",
            )
        if response.status_code >= 400:
            raise RegistryError(
                f"registry {self.label}: {what}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response

    # -- manifests ---------------------------------------------------------------------------
    def manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """(raw bytes, media type, digest) of a manifest by tag or digest."""
        response = self._check(
            self.request(
                "GET",
                f"/v2/{repo}/manifests/{reference}",
                headers={"Accept": ", ".join(MANIFEST_TYPES)},
            ),
            f"manifest {repo}:{reference}",
        )
        raw = response.content
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        media = response.headers.get("content-type", "").split(";")[0] or json.loads(raw).get(
            "mediaType", OCI_MANIFEST
        )
        return raw, media, digest

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        response = self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if response.status_code == 404:
            return None
        self._check(response, f"manifest {repo}:{reference}")
        digest: str | None = response.headers.get("docker-content-digest")  # httpx: Any
        return digest

    def put_manifest(self, repo: str, reference: str, raw: bytes, media: str) -> str:
        response = self._check(
            self.request(
                "PUT",
                f"/v2/{repo}/manifests/{reference}",
                content=raw,
                headers={"Content-Type": media},
            ),
            f"put manifest {repo}:{reference}",
        )
        digest: str = response.headers.get("docker-content-digest", "")  # httpx: Any
        return digest

    # -- blobs -------------------------------------------------------------------------------
    def has_blob(self, repo: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if response.status_code == 404:
            return False
        self._check(response, f"blob {repo}@{digest}")
        return True

    def get_blob(self, repo: str, digest: str) -> bytes:
        response = self.request("GET", f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
        return self._check(response, f"blob {repo}@{digest}").content

    def put_blob(self, repo: str, digest: str, data: Any, size: int) -> None:
        start = self._check(
            self.request("POST", f"/v2/{repo}/blobs/uploads/"), f"start upload to {repo}"
        )
        location = start.headers["location"]
        if location.startswith("/"):
            location = f"{self.url}{location}"
        separator = "&" if "?" in location else "?"
        self._check(
            self.request(
                "PUT",
                f"{location}{separator}digest={digest}",
                content=data,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            ),
            f"upload {digest[:19]} to {repo}",
        )

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Link a blob the registry holds in `from_repo` into `repo` without sending it."""
        response = self.request(
            "POST", f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": from_repo}
        )
        if response.status_code == 201:
            return True
        if response.status_code == 202 and "location" in response.headers:
            location = response.headers["location"]  # an upload was started instead: cancel it
            url = f"{self.url}{location}" if location.startswith("/") else location
            self.request("DELETE", url)
        return False

    def copy_blob_from(
        self, source: RegistryClient, repo: str, digest: str, stats: CopyStats
    ) -> None:
        if self.has_blob(repo, digest):
            stats.blobs_skipped += 1
            stats.seen.setdefault(digest, repo)
            return
        other = stats.seen.get(digest)
        if other and other != repo and self.mount_blob(repo, digest, other):
            stats.blobs_mounted += 1
            return
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            hasher = hashlib.sha256()
            for attempt in range(RETRIES):
                spool.seek(0)
                spool.truncate()
                hasher = hashlib.sha256()
                try:
                    with source.client.stream(
                        "GET", f"{source.url}/v2/{repo}/blobs/{digest}", follow_redirects=True
                    ) as response:
                        source._check(response, f"blob {repo}@{digest}")
                        for chunk in response.iter_bytes(1 << 20):
                            hasher.update(chunk)
                            spool.write(chunk)
                    break
                except httpx.TransportError as exc:
                    if attempt == RETRIES - 1:
                        raise RegistryError(
                            f"registry {source.label}: reading blob {digest[:19]} of {repo} "
                            f"failed after {RETRIES} tries: {exc}",
                            "check that the registry is up (dataops status), then retry",
                        ) from None
                    source.sleep(0.5 * 2**attempt)
            if "sha256:" + hasher.hexdigest() != digest:
                raise RegistryError(f"blob {digest} from {source.label} does not match its digest")
            size = spool.tell()
            spool.seek(0)
            self.put_blob(repo, digest, spool.read(), size)
        stats.blobs_sent += 1
        stats.bytes_sent += size
        stats.seen[digest] = repo

    # -- artifacts ---------------------------------------------------------------------------
    def push_artifact(
        self,
        repo: str,
        tag: str,
        payload: bytes,
        media: str,
        extra: Sequence[tuple[bytes, str]] = (),
    ) -> str:
        """An OCI artifact whose first layer is `payload` (followed by the `extra` layers, each
        (bytes, media type)); returns the manifest digest."""
        empty = b"{}"
        blobs = [(empty, EMPTY_CONFIG), (payload, media), *extra]
        for data, _ in blobs:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if not self.has_blob(repo, digest):
                self.put_blob(repo, digest, data, len(data))
        descriptor = [
            {"mediaType": m, "digest": "sha256:" + hashlib.sha256(d).hexdigest(), "size": len(d)}
            for d, m in blobs
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": media,
            "config": descriptor[0],
            "layers": descriptor[1:],
        }
        raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        existing = self.manifest_digest(repo, tag)
        if existing and existing != digest:
            raise RegistryError(
                f"registry {self.label}: tag {repo}:{tag} already points at {existing}, "
                f"not {digest}",
                "tags of releases never move; investigate who pushed it",
            )
        stored = self.put_manifest(repo, tag, raw, OCI_MANIFEST)
        if stored and stored != digest:
            raise RegistryError(f"registry {self.label} stored {stored} for {digest}")
        return digest

    def artifact(self, repo: str, reference: str) -> tuple[bytes, str]:
        """(first layer, manifest digest) of an artifact."""
        raw, _, digest = self.manifest(repo, reference)
        layer = json.loads(raw)["layers"][0]["digest"]
        return self.get_blob(repo, layer), digest

    def artifact_layer(self, repo: str, reference: str, media: str) -> bytes:
        """The layer of type `media` of the artifact `repo@reference`, its digest verified."""
        raw, _, digest = self.manifest(repo, reference)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"registry {self.label} served {digest} for {repo}@{reference}")
        for layer in json.loads(raw)["layers"]:
            if layer["mediaType"] == media:
                data = self.get_blob(repo, layer["digest"])
                if "sha256:" + hashlib.sha256(data).hexdigest() != layer["digest"]:
                    raise RegistryError(
                        f"registry {self.label}: blob {layer['digest']} of {repo} is corrupt"
                    )
                return data
        raise RegistryError(f"registry {self.label}: {repo}@{reference} has no {media} layer")


def copy_image(
    source: RegistryClient,
    target: RegistryClient,
    repo: str,
    digest: str,
    tag: str,
    stats: CopyStats,
) -> str:
    """Copy `repo@digest` (and every blob it needs) to `target` as `repo:tag`, by digest.

    Refuses a `tag` that already points at something else in the target; verifies that the
    target serves the same digest afterwards."""
    raw, media, actual = source.manifest(repo, digest)
    if actual != digest:
        raise RegistryError(f"{source.label} served {actual} for {repo}@{digest}")
    existing = target.manifest_digest(repo, tag)
    if existing and existing != digest:
        raise RegistryError(
            f"registry {target.label}: tag {repo}:{tag} points at {existing}, not {digest}: "
            "it was moved outside dataops",
            "version tags are never overwritten; find out who pushed it, delete the tag if it "
            "is wrong, then promote again",
        )
    document = json.loads(raw)
    children = [document["config"], *document.get("layers", [])] if "config" in document else []
    for blob in children:
        target.copy_blob_from(source, repo, blob["digest"], stats)
    stored = target.put_manifest(repo, tag, raw, media)
    check = target.manifest_digest(repo, digest)
    if (stored and stored != digest) or check != digest:
        raise RegistryError(
            f"registry {target.label}: {repo}@{digest} was stored as {stored or check}",
            "the copy is not byte-identical; nothing was activated",
        )
    return digest
