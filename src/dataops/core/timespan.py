"""Time rules: a pipeline's schedule intervals, CLI dates, and ages like `24h`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from croniter import croniter  # type: ignore[import-untyped]

from dataops.errors import DataOpsError, ExitCode

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
MAX_INTERVALS = 1000
_AGE = re.compile(r"^(\d+)([mhd])$")


def interval_for(schedule: str | None, moment: datetime) -> tuple[datetime, datetime]:
    """The schedule interval that contains `moment` (for @once / None: the moment itself)."""
    cron = PRESETS.get(schedule or "", schedule)
    if not cron or cron == "@once":
        return moment, moment
    moment = moment.replace(fold=0)
    start = croniter(cron, moment).get_prev(datetime).replace(fold=0)
    # croniter.match compares to the minute; only the boundary itself starts there.
    if croniter.match(cron, moment) and moment.second == 0 and moment.microsecond == 0:
        start = moment
    end = croniter(cron, start).get_next(datetime).replace(fold=0)
    return start, end


def intervals(
    schedule: str | None, first: datetime, last: datetime
) -> list[tuple[datetime, datetime]]:
    """Every schedule interval from the one containing `first` to the one containing `last`."""
    found = [interval_for(schedule, first)]
    while found[-1][1] <= last and found[-1][1] > found[-1][0]:
        found.append(interval_for(schedule, found[-1][1]))
        if len(found) > MAX_INTERVALS:
            raise DataOpsError(
                f"more than {MAX_INTERVALS:,} intervals: narrow --from/--to",
                exit_code=ExitCode.USAGE,
            )
    return found


def parse_date(value: str) -> datetime:
    """A CLI date (YYYY-MM-DD or ISO 8601); UTC when it names no zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DataOpsError(
            f"{value!r} is not a date", "give YYYY-MM-DD or ISO 8601", exit_code=ExitCode.USAGE
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_age(text: str) -> timedelta:
    """`30m`, `24h`, `7d` as a timedelta."""
    match = _AGE.match(text.strip())
    if not match:
        raise DataOpsError(
            f"--older-than {text!r} is not an age",
            "give minutes, hours or days: 30m, 24h, 7d",
            exit_code=ExitCode.USAGE,
        )
    amount, unit = int(match.group(1)), match.group(2)
    return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount)}.get(
        unit, timedelta(days=amount)
    )
