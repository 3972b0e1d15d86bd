"""Time rules: schedule intervals, CLI dates and ages."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dataops.core.timespan import MAX_INTERVALS, interval_for, intervals, parse_age, parse_date
from dataops.errors import DataOpsError, ExitCode


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "moment", "start", "end"),
    [
        ("@monthly", utc(2024, 2, 17, 13, 45), utc(2024, 2, 1), utc(2024, 3, 1)),
        ("@monthly", utc(2024, 12, 31, 23, 59), utc(2024, 12, 1), utc(2025, 1, 1)),
        ("@daily", utc(2024, 2, 29, 8, 30), utc(2024, 2, 29), utc(2024, 3, 1)),
        ("@hourly", utc(2024, 6, 3, 14, 37), utc(2024, 6, 3, 14), utc(2024, 6, 3, 15)),
        # 2024-03-13 is a Wednesday; @weekly starts on Sunday.
        ("@weekly", utc(2024, 3, 13, 10), utc(2024, 3, 10), utc(2024, 3, 17)),
        ("@yearly", utc(2024, 7, 4, 12), utc(2024, 1, 1), utc(2025, 1, 1)),
        ("@quarterly", utc(2024, 5, 20), utc(2024, 4, 1), utc(2024, 7, 1)),
        # Weekdays at 06:30: Friday 09:00 -> Friday 06:30 to Monday 06:30.
        ("30 6 * * 1-5", utc(2024, 3, 15, 9), utc(2024, 3, 15, 6, 30), utc(2024, 3, 18, 6, 30)),
        # Saturday belongs to Friday's interval.
        ("30 6 * * 1-5", utc(2024, 3, 16, 10), utc(2024, 3, 15, 6, 30), utc(2024, 3, 18, 6, 30)),
        # Tuesday before 06:30 belongs to Monday's interval.
        ("30 6 * * 1-5", utc(2024, 3, 19, 6, 29), utc(2024, 3, 18, 6, 30), utc(2024, 3, 19, 6, 30)),
    ],
)
def test_interval_for_contains_the_moment(
    schedule: str, moment: datetime, start: datetime, end: datetime
) -> None:
    assert interval_for(schedule, moment) == (start, end)
    assert start <= moment < end


@pytest.mark.parametrize(
    ("schedule", "moment", "end"),
    [
        ("@monthly", utc(2024, 3, 1), utc(2024, 4, 1)),
        ("@daily", utc(2024, 3, 1), utc(2024, 3, 2)),
        ("@hourly", utc(2024, 3, 1, 23), utc(2024, 3, 2)),
        ("@weekly", utc(2024, 3, 10), utc(2024, 3, 17)),
        ("@yearly", utc(2025, 1, 1), utc(2026, 1, 1)),
        ("30 6 * * 1-5", utc(2024, 3, 18, 6, 30), utc(2024, 3, 19, 6, 30)),
    ],
)
def test_a_moment_on_a_boundary_starts_the_interval(
    schedule: str, moment: datetime, end: datetime
) -> None:
    assert interval_for(schedule, moment) == (moment, end)


# croniter.match works to the minute: a moment inside a boundary's first minute (`dataops run`
# at 14:00:30 for an @hourly pipeline) once started an interval of its own.
@pytest.mark.parametrize(
    ("schedule", "moment", "start"),
    [
        ("@hourly", utc(2024, 3, 1, 14, 0, 30), utc(2024, 3, 1, 14)),
        ("@monthly", utc(2024, 3, 1, 0, 0, 59), utc(2024, 3, 1)),
    ],
)
def test_a_moment_in_the_first_minute_after_a_boundary_starts_at_the_boundary(
    schedule: str, moment: datetime, start: datetime
) -> None:
    assert interval_for(schedule, moment)[0] == start


@pytest.mark.parametrize("schedule", [None, "@once", ""])
def test_unscheduled_interval_is_the_moment_itself(schedule: str | None) -> None:
    moment = utc(2024, 5, 7, 16, 20, 11)
    assert interval_for(schedule, moment) == (moment, moment)


def test_interval_keeps_the_moments_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    start, end = interval_for("@daily", datetime(2024, 3, 13, 1, tzinfo=plus_two))
    assert (start, end) == (
        datetime(2024, 3, 13, tzinfo=plus_two),
        datetime(2024, 3, 14, tzinfo=plus_two),
    )
    assert start.utcoffset() == timedelta(hours=2)


def test_a_year_of_monthly_intervals() -> None:
    found = intervals("@monthly", utc(2024, 1, 1), utc(2024, 12, 31))
    assert len(found) == 12
    assert found[0] == (utc(2024, 1, 1), utc(2024, 2, 1))
    assert found[-1] == (utc(2024, 12, 1), utc(2025, 1, 1))
    assert all(a[1] == b[0] for a, b in itertools.pairwise(found))


def test_intervals_from_mid_interval_to_mid_interval() -> None:
    found = intervals("@daily", utc(2024, 2, 27, 18), utc(2024, 3, 1, 3))
    assert [start.day for start, _ in found] == [27, 28, 29, 1]


@pytest.mark.parametrize("schedule", ["@monthly", "@daily", "@hourly", "30 6 * * 1-5"])
def test_a_single_date_gives_one_interval(schedule: str) -> None:
    moment = utc(2024, 3, 18, 12)
    assert intervals(schedule, moment, moment) == [interval_for(schedule, moment)]


@pytest.mark.parametrize("schedule", [None, "@once"])
def test_unscheduled_intervals_are_one_moment(schedule: str | None) -> None:
    first = utc(2024, 1, 1)
    assert intervals(schedule, first, utc(2025, 1, 1)) == [(first, first)]


def test_more_than_the_maximum_of_intervals_is_a_usage_error() -> None:
    first = utc(2024, 1, 1)
    # Exactly MAX_INTERVALS hours is fine; one more is not.
    assert len(intervals("@hourly", first, first + timedelta(hours=MAX_INTERVALS - 1))) == 1000
    with pytest.raises(DataOpsError, match="more than 1,000 intervals") as caught:
        intervals("@hourly", first, first + timedelta(hours=MAX_INTERVALS))
    assert caught.value.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-18", utc(2024, 3, 18)),
        ("2024-03-18T06:30:00", utc(2024, 3, 18, 6, 30)),
        ("2024-03-18T06:30:00Z", utc(2024, 3, 18, 6, 30)),
        (
            "2024-03-18T06:30:00+05:30",
            datetime(2024, 3, 18, 6, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
    ],
)
def test_parse_date(text: str, expected: datetime) -> None:
    parsed = parse_date(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_a_date_alone_is_midnight_utc() -> None:
    parsed = parse_date("2025-01-31")
    assert parsed.tzinfo is UTC
    assert (parsed.hour, parsed.minute, parsed.second) == (0, 0, 0)


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "18/03/2024", ""])
def test_parse_date_garbage_is_a_usage_error(text: str) -> None:
    with pytest.raises(DataOpsError, match="is not a date") as caught:
        parse_date(text)
    assert caught.value.exit_code is ExitCode.USAGE
    assert repr(text) in caught.value.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        (" 2h ", timedelta(hours=2)),
        ("0m", timedelta(0)),
        ("90m", timedelta(hours=1, minutes=30)),
    ],
)
def test_parse_age(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "10", "5w", "-1h", "1.5h", "h", "24 h", "7D", "2h30m"])
def test_parse_age_rejects_what_is_not_an_age(text: str) -> None:
    with pytest.raises(DataOpsError, match="is not an age") as caught:
        parse_age(text)
    assert caught.value.exit_code is ExitCode.USAGE
