"""Business-hours arithmetic for SLA due times. Pure functions: no database, no clock.

``business_hours`` is the workspace's JSON: ISO weekday ("1" = Monday) -> ["HH:MM", "HH:MM"]. A window whose end
is not after its start runs overnight into the next day (["22:00", "06:00"]); "24:00" means midnight at the end
of the day. An empty table means the team works around the clock.

Windows are built from local wall-clock times in the workspace's timezone and then measured in real elapsed time,
so a window on a daylight-saving night is an hour shorter or longer, exactly as the clock on the wall says.
"""

import datetime as dt
import zoneinfo
from collections.abc import Iterator

MAX_DAYS_SCANNED = 800


def _parse(value: str) -> dt.time | None:
    """ "HH:MM" -> time; "24:00" -> None (the midnight that ends the day)."""
    hours, minutes = (int(part) for part in value.strip().split(":"))
    if hours == 24 and minutes == 0:
        return None
    return dt.time(hours, minutes)


def _local(day: dt.date, at: dt.time | None, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    if at is None:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return dt.datetime.combine(day, at, tzinfo=tz)


def validate_business_hours(business_hours: dict) -> None:
    """Raise ValueError naming the weekday whose window is malformed."""
    for key, window in (business_hours or {}).items():
        if str(key) not in {str(d) for d in range(1, 8)}:
            raise ValueError(f"{key!r} is not an ISO weekday (1 = Monday ... 7 = Sunday)")
        if not isinstance(window, list | tuple) or len(window) != 2:
            raise ValueError(f"weekday {key}: expected [start, end]")
        try:
            _parse(window[0]), _parse(window[1])
        except (ValueError, AttributeError) as error:
            raise ValueError(f"weekday {key}: {window!r} is not HH:MM") from error


def windows_from(
    start: dt.datetime, *, business_hours: dict, tz: zoneinfo.ZoneInfo
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Business windows (aware, in order) that end after ``start``; the first may have begun before it."""
    first_day = start.astimezone(tz).date() - dt.timedelta(days=1)  # yesterday's overnight window may still run
    for offset in range(MAX_DAYS_SCANNED):
        day = first_day + dt.timedelta(days=offset)
        window = business_hours.get(str(day.isoweekday()))
        if not window:
            continue
        opens_at, closes_at = _parse(window[0]), _parse(window[1])
        if opens_at is None:
            continue
        opens = _local(day, opens_at, tz)
        closes = _local(day, closes_at, tz)
        if closes <= opens:  # overnight: closes on the next day
            closes = _local(day + dt.timedelta(days=1), closes_at, tz)
        # Compare in UTC: aware datetimes sharing a tzinfo compare by wall clock, not elapsed time.
        opens, closes = opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)
        if closes > start:
            yield opens, closes


def add_business_minutes(start: dt.datetime, minutes: int, *, business_hours: dict, timezone: str) -> dt.datetime:
    """The moment ``minutes`` of business time after ``start`` (an aware datetime); returned in UTC."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    start = start.astimezone(dt.UTC)
    if not business_hours:
        return start + dt.timedelta(minutes=minutes)
    remaining = dt.timedelta(minutes=minutes)
    cursor = start
    for opens, closes in windows_from(start, business_hours=business_hours, tz=zoneinfo.ZoneInfo(timezone)):
        cursor = max(cursor, opens)
        available = closes - cursor
        if remaining <= available:
            return cursor + remaining
        remaining -= max(available, dt.timedelta())
        cursor = max(cursor, closes)
    raise ValueError("business hours never open")


def business_minutes_between(start: dt.datetime, end: dt.datetime, *, business_hours: dict, timezone: str) -> float:
    """Business minutes elapsed from ``start`` to ``end`` (0 if end is before start)."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if end <= start:
        return 0.0
    if not business_hours:
        return (end - start).total_seconds() / 60
    total = dt.timedelta()
    counted_until = start  # overlapping windows are counted once
    for opens, closes in windows_from(start, business_hours=business_hours, tz=zoneinfo.ZoneInfo(timezone)):
        if opens >= end:
            break
        total += max(min(closes, end) - max(opens, counted_until), dt.timedelta())
        counted_until = max(counted_until, min(closes, end))
    return total.total_seconds() / 60
