"""Extract: take the interval's file from the drop, check it, stage it for the load."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from datetime import datetime
from pathlib import Path

from dataops.core.pipeline import PipelineSpec, interval_path
from dataops.task.files import CHUNK, Manifest, StagedDigest, TaskError, staged_dir


def extract(spec: PipelineSpec, data_dir: Path, start: datetime, end: datetime) -> Manifest:
    relative = interval_path(spec.source, start, end)
    source = data_dir / "incoming" / relative
    if not source.is_file():
        raise TaskError(
            f"no file {relative} in the drop ({source}) for the interval {start:%Y-%m-%d} to "
            f"{end:%Y-%m-%d}: the delivery has not arrived (the task retries)"
        )
    columns = list(spec.target.columns)
    with source.open(newline="") as handle:
        header = next(
            csv.reader(io.StringIO(handle.readline()), delimiter=spec.source.delimiter), []
        )
    if header != columns:
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        raise TaskError(
            f"{relative}: the header does not match target.columns of the spec "
            f"(missing: {missing or 'none'}, unexpected: {extra or 'none'}, order must match)"
        )
    out_dir = staged_dir(data_dir, spec.pipeline, start)
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in (out_dir.parent, out_dir):
        # Shared between the host and the containers' uid: whoever comes next may write here.
        with contextlib.suppress(PermissionError):
            folder.chmod(0o777)
    tmp = out_dir / "data.csv.tmp"
    last = b""
    with source.open("rb") as reader, tmp.open("wb") as writer:
        digest = StagedDigest(os.fstat(reader.fileno()).st_size)
        while chunk := reader.read(CHUNK):
            writer.write(chunk)
            digest.update(chunk)
            last = chunk
        writer.flush()
        os.fsync(writer.fileno())
    size = digest.position
    rows = digest.newlines - 1 + (0 if size == 0 or last.endswith(b"\n") else 1)
    os.replace(tmp, out_dir / "data.csv")
    manifest = Manifest(
        pipeline=spec.pipeline,
        interval_start=start.isoformat(),
        interval_end=end.isoformat(),
        source=relative,
        columns=columns,
        rows=rows,
        bytes=size,
        sha256=digest.sha256,
        parts=digest.parts(),
    )
    manifest.write(out_dir / "manifest.json")
    return manifest
