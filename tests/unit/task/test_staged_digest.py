"""The extract's digest: the whole file's sha256, and two parts split where a row ends."""

from __future__ import annotations

import hashlib
import re

import pytest

from dataops.task.files import StagedDigest


def digest_of(data: bytes, chunk: int, split_min: int = 1) -> StagedDigest:
    digest = StagedDigest(len(data), split_min=split_min)
    for i in range(0, len(data), chunk):
        digest.update(data[i : i + chunk])
    return digest


# Rows whose quoted fields hold newlines, doubled quotes and delimiters (another team's export).
QUOTED = b"id,note\n" + b"".join(
    b'%d,"line one\nline ""two"", with a comma"\n' % i for i in range(500)
)


@pytest.mark.parametrize("chunk", [1, 3, 64, 4096, 1 << 20])
def test_the_parts_cover_the_file_and_the_second_starts_on_a_row(chunk: int) -> None:
    digest = digest_of(QUOTED, chunk)
    first, second = digest.parts()
    assert digest.sha256 == hashlib.sha256(QUOTED).hexdigest()
    assert (first.offset, first.line) == (0, 1)
    assert first.bytes == second.offset and second.offset + second.bytes == len(QUOTED)
    assert first.sha256 == hashlib.sha256(QUOTED[: second.offset]).hexdigest()
    assert second.sha256 == hashlib.sha256(QUOTED[second.offset :]).hexdigest()
    # Past the middle, just after a newline that ends a row (not one inside quotes).
    assert second.offset >= len(QUOTED) // 2
    assert QUOTED[second.offset - 1 : second.offset] == b"\n"
    assert re.match(rb'\d+,"line one\n', QUOTED[second.offset :])
    assert second.line == QUOTED[: second.offset].count(b"\n") + 1
    assert digest.newlines == QUOTED.count(b"\n") and digest.position == len(QUOTED)


def test_a_small_file_is_one_part() -> None:
    assert digest_of(QUOTED, 64, split_min=len(QUOTED) + 1).parts() == []


def test_no_row_boundary_past_the_middle_means_one_part() -> None:
    # One quoted field runs from before the middle to the end: no newline after it ends a row.
    data = b'a,b\n1,"' + b"x\n" * 100 + b'"'
    assert digest_of(data, 16).parts() == []


def test_the_split_env_variable_sets_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAOPS_SPLIT_MIN_BYTES", str(len(QUOTED) + 1))
    assert StagedDigest(len(QUOTED)).parts() == []
    monkeypatch.setenv("DATAOPS_SPLIT_MIN_BYTES", "1")
    digest = StagedDigest(len(QUOTED))
    digest.update(QUOTED)
    assert len(digest.parts()) == 2
