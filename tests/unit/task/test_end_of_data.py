"""The load refuses a line that PostgreSQL's COPY would take for the end of the data (`\\.`
alone, outside quotes), wherever the chunks it reads are cut; quoted `\\.` values are data."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops.task.files import TaskError
from dataops.task.load import _EndOfData

REFUSED = {
    "a line of its own": (b"id,name\n1,x\n\\.\n2,y\n", 3),
    "CRLF line ends": (b"id,name\r\n1,x\r\n\\.\r\n2,y\r\n", 3),
    "the first line": (b"\\.\n1,x\n", 1),
    "the last line, no line end": (b"id,name\n1,x\n\\.", 3),
    "after a quoted field that spans lines": (b'id,note\n1,"two\nlines"\n\\.\n2,z\n', 4),
    "after doubled quotes": (b'id,note\n1,"say ""hi"""\n\\.\n', 3),
}
ACCEPTED = {
    "quoted": b'id,name\n1,"\\."\n2,y\n',
    "a line inside a quoted field": b'id,note\n1,"first\n\\.\nlast"\n2,z\n',
    "not alone on its line": b"id,path\n1,C:\\.\n\\.x,2\n",
    "in a value": b"id,name\n1,a\\.b\n",
}


def scan(path: Path, size: int, start: int = 0) -> None:
    data = path.read_bytes()[start:]
    guard = _EndOfData(path, start)
    for at in range(0, len(data), size):
        guard.feed(data[at : at + size])
    guard.finish()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 1 << 20])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_end_of_data_line_is_refused_naming_its_line(
    tmp_path: Path, case: str, size: int
) -> None:
    data, line = REFUSED[case]
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    with pytest.raises(TaskError, match=rf"data\.csv: line {line} is `\\\.` alone"):
        scan(path, size)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 1 << 20])
@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_quoted_or_embedded_backslash_dots_are_data(tmp_path: Path, case: str, size: int) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(ACCEPTED[case])
    scan(path, size)  # raises nothing


def test_a_part_is_scanned_from_its_own_start(tmp_path: Path) -> None:
    """The second stream of a two-part load starts on a row: its first line can be the mark,
    and the quotes are counted from the part's start (the first part's are its own)."""
    head = b'id,note\n1,"open\n'  # as if the first part ended inside quotes (it never does)
    path = tmp_path / "data.csv"
    path.write_bytes(head + b"\\.\n2,x\n")
    with pytest.raises(TaskError, match="line 3 is"):
        scan(path, 3, start=len(head))
    path.write_bytes(head + b'2,"\\."\n')
    scan(path, 3, start=len(head))
