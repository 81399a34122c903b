"""SLA business-hours arithmetic: weekends, overnight windows, timezones and daylight-saving changes."""

import datetime as dt
import zoneinfo

import pytest

from support.sla import add_business_minutes, business_minutes_between, validate_business_hours

WEEKDAYS_9_TO_5 = {str(day): ["09:00", "17:00"] for day in range(1, 6)}
UTC = dt.UTC


def at(text: str, tz: str = "UTC") -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(tz))


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        # inside hours, same day
        ("2026-11-18 10:00", 60, "2026-11-18 11:00"),
        # rolls over the evening into the next morning (Wednesday -> Thursday)
        ("2026-11-18 16:30", 60, "2026-11-19 09:30"),
        # before opening: the clock starts at 09:00
        ("2026-11-18 06:00", 30, "2026-11-18 09:30"),
        # Friday afternoon -> Monday morning, the weekend does not count
        ("2026-11-20 16:00", 120, "2026-11-23 10:00"),
        # raised on Saturday: starts Monday 09:00
        ("2026-11-21 12:00", 240, "2026-11-23 13:00"),
        # exactly at closing: nothing left today
        ("2026-11-18 17:00", 1, "2026-11-19 09:01"),
        # a full business week = 5 x 8 h
        ("2026-11-16 09:00", 40 * 60, "2026-11-20 17:00"),
        ("2026-11-16 09:00", 40 * 60 + 1, "2026-11-23 09:01"),
    ],
)
def test_due_time_in_business_hours(start, minutes, expected):
    assert add_business_minutes(at(start), minutes, business_hours=WEEKDAYS_9_TO_5, timezone="UTC") == at(expected)


def test_due_time_is_computed_in_the_workspace_timezone():
    # 15:00 UTC is 10:00 in New York (EST, UTC-5): four business hours end at 14:00 New York = 19:00 UTC
    start = at("2026-11-18 15:00")

    due = add_business_minutes(start, 240, business_hours=WEEKDAYS_9_TO_5, timezone="America/New_York")

    assert due == at("2026-11-18 19:00")
    # the same moment in Tokyo is 00:00 Thursday: the clock starts 09:00 Tokyo (00:00 UTC) and runs 4 h
    assert add_business_minutes(start, 240, business_hours=WEEKDAYS_9_TO_5, timezone="Asia/Tokyo") == at(
        "2026-11-19 04:00"
    )


def test_overnight_window_runs_past_midnight():
    night_shift = {str(day): ["22:00", "06:00"] for day in range(1, 8)}

    # 05:00 is inside the window that opened at 22:00 the evening before; 1 h left, then it reopens at 22:00
    due = add_business_minutes(at("2026-11-18 05:00"), 120, business_hours=night_shift, timezone="UTC")

    assert due == at("2026-11-18 23:00")


def test_window_until_midnight_and_sunday_off():
    hours = {str(day): ["12:00", "24:00"] for day in range(1, 7)}  # Mon-Sat noon to midnight

    due = add_business_minutes(at("2026-11-21 23:00"), 120, business_hours=hours, timezone="UTC")  # Saturday

    assert due == at("2026-11-23 13:00")  # 1 h on Saturday, Sunday closed, 1 h on Monday


def test_spring_forward_day_keeps_eight_real_hours():
    # Europe/Berlin switches to summer time on Sunday 29 March 2026; a Monday 09:00-17:00 window is still 8 h,
    # but it is an hour earlier in UTC than the Friday before.
    berlin = "Europe/Berlin"
    start = at("2026-03-27 16:00", berlin)  # Friday, CET (UTC+1) = 15:00 UTC

    due = add_business_minutes(start, 120, business_hours=WEEKDAYS_9_TO_5, timezone=berlin)

    assert due == at("2026-03-30 10:00", berlin)
    assert due.astimezone(UTC) == at("2026-03-30 08:00")  # CEST is UTC+2


def test_overnight_window_across_daylight_saving_is_one_hour_shorter():
    # The night of 28-29 March 2026 in Berlin skips 02:00-03:00: 22:00-06:00 holds 7 real hours, not 8.
    night = {str(day): ["22:00", "06:00"] for day in range(1, 8)}
    berlin = "Europe/Berlin"
    start = at("2026-03-28 22:00", berlin)

    assert (
        business_minutes_between(start, at("2026-03-29 06:00", berlin), business_hours=night, timezone=berlin) == 7 * 60
    )
    assert add_business_minutes(start, 7 * 60, business_hours=night, timezone=berlin) == at("2026-03-29 06:00", berlin)


def test_fall_back_night_is_one_hour_longer():
    night = {str(day): ["22:00", "06:00"] for day in range(1, 8)}
    berlin = "Europe/Berlin"

    minutes = business_minutes_between(
        at("2026-10-24 22:00", berlin), at("2026-10-25 06:00", berlin), business_hours=night, timezone=berlin
    )

    assert minutes == 9 * 60


def test_changing_the_workspace_timezone_moves_due_times():
    start = at("2026-11-18 08:00")  # UTC

    in_london = add_business_minutes(start, 60, business_hours=WEEKDAYS_9_TO_5, timezone="Europe/London")
    in_sydney = add_business_minutes(start, 60, business_hours=WEEKDAYS_9_TO_5, timezone="Australia/Sydney")

    assert in_london == at("2026-11-18 10:00")  # opens 09:00 London (GMT)
    # 08:00 UTC is 19:00 in Sydney (AEDT, UTC+11): closed; Thursday 09:00 Sydney is 22:00 UTC Wednesday
    assert in_sydney == at("2026-11-18 23:00")


def test_empty_business_hours_means_around_the_clock():
    assert add_business_minutes(at("2026-11-21 23:00"), 90, business_hours={}, timezone="UTC") == at("2026-11-22 00:30")


def test_business_minutes_between_skips_nights_and_weekends():
    minutes = business_minutes_between(
        at("2026-11-20 16:00"), at("2026-11-23 10:30"), business_hours=WEEKDAYS_9_TO_5, timezone="UTC"
    )

    assert minutes == 60 + 90


def test_naive_start_is_refused():
    with pytest.raises(ValueError, match="aware"):
        add_business_minutes(dt.datetime(2026, 1, 1), 10, business_hours=WEEKDAYS_9_TO_5, timezone="UTC")  # noqa: DTZ001


@pytest.mark.parametrize(
    ("hours", "message"),
    [({"8": ["09:00", "17:00"]}, "ISO weekday"), ({"1": ["9am", "5pm"]}, "HH:MM"), ({"1": ["09:00"]}, "start, end")],
)
def test_malformed_business_hours_are_named(hours, message):
    with pytest.raises(ValueError, match=message):
        validate_business_hours(hours)
