"""Freeze-window semantics (schedule/freeze.py): boundaries, precedence, time zones, cron, the new year,
the calendar settings. Parsing and validating the windows themselves: test_windows.py."""
import datetime as dt
import os
import time
from zoneinfo import ZoneInfo

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import CalendarError, PolicyError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.freeze import FreezeSchedule
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.settings import parse_calendar_settings
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.windows import Target, parse_windows

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
TARGET = Target("ta-core", "core_business", "production", "version_update")


def at(text, tz=SH):
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def schedule(windows, target=TARGET, calendar=None):
    return FreezeSchedule(parse_windows(windows, "policy.yml", calendar), target)


TRADING = {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session"}


# --- boundaries: [start, end) -------------------------------------------------------------------
@pytest.mark.parametrize("window,start,end", [
    ({"name": "w", "kind": "deny", "start": "2025-09-30T15:00", "end": "2025-10-09T09:00"}, "2025-09-30T15:00", "2025-10-09T09:00"),
    ({"name": "w", "kind": "deny", "cron": "30 20 * * *", "duration": "90m"}, "2025-06-10T20:30", "2025-06-10T22:00"),
    ({"name": "w", "kind": "deny", "calendar": "trading_session"}, "2025-06-10T09:15", "2025-06-10T11:30"),
    ({"name": "w", "kind": "deny", "calendar": "trading_session"}, "2025-06-10T13:00", "2025-06-10T15:00"),
    ({"name": "w", "kind": "deny", "calendar": "non_working_day"}, "2025-10-01T00:00", "2025-10-09T00:00"),
])
def test_instants_exactly_at_start_and_end(window, start, end):
    sched = schedule([window])
    one = dt.timedelta(microseconds=1)
    assert not sched.is_open(at(start))                       # the start instant is inside
    assert sched.is_open(at(start) - one)
    assert not sched.is_open(at(end) - one)
    assert sched.is_open(at(end))                             # the end instant is outside
    decision = sched.decide(at(start))
    assert decision.until == at(end).timestamp() and decision.next_open == at(end).timestamp()


def test_refusal_message_names_window_until_and_next_open_slot():
    decision = schedule([TRADING]).decide(at("2025-09-29T10:00"))
    assert decision.message() == ("frozen by deny window 'trading-sessions' until 2025-09-29 11:30 Asia/Shanghai; "
                                  "next open slot 2025-09-29 11:30 Asia/Shanghai")
    assert decision.as_dict()["decided_by"] == ["trading-sessions"]


def test_custom_sessions_and_the_opening_auction():
    assert not schedule([TRADING]).is_open(at("2025-06-10T09:20"))     # default pads the 09:15 call auction
    custom = schedule([dict(TRADING, sessions=["09:30-11:30", "13:00-15:00"])])
    assert custom.is_open(at("2025-06-10T09:20")) and not custom.is_open(at("2025-06-10T09:30"))
    via_policy = schedule([TRADING], calendar={"trading_sessions": ["09:00-16:00"]})
    assert not via_policy.is_open(at("2025-06-10T12:00"))


def test_trading_session_follows_trading_days_not_working_days():
    sched = schedule([TRADING])
    assert sched.is_open(at("2025-09-28T10:00"))       # make-up Sunday: working, no trading
    assert sched.is_open(at("2024-02-09T10:00"))       # working day, exchanges closed
    assert not sched.is_open(at("2024-02-08T10:00"))
    szse = schedule([dict(TRADING, exchange="XSHE")])
    assert szse.is_open(at("2024-02-09T10:00"))


# --- precedence ----------------------------------------------------------------------------------
ALLOW_NIGHTS = {"name": "nights", "kind": "allow", "cron": "0 19 * * *", "duration": "12h"}


def test_overlapping_deny_and_allow_deny_wins():
    deny = {"name": "national-day", "kind": "deny", "start": "2025-09-30T15:00", "end": "2025-10-09T09:00"}
    sched = schedule([ALLOW_NIGHTS, deny])
    seg = sched.status_at(at("2025-10-02T22:00"))
    assert not seg.open and seg.deny == ("national-day",) and seg.allow == ("nights",)
    assert sched.is_open(at("2025-10-09T20:00"))
    decision = sched.decide(at("2025-10-02T22:00"))
    assert decision.until == at("2025-10-09T09:00").timestamp()
    assert decision.next_open == at("2025-10-09T19:00").timestamp()     # 09:00-19:00 is outside the allow window


def test_allow_windows_restrict_only_targets_they_apply_to():
    windows = [dict(ALLOW_NIGHTS, systems=["ta-*"])]
    assert not schedule(windows).is_open(at("2025-06-10T12:00"))
    assert schedule(windows).is_open(at("2025-06-10T20:00"))
    other = Target("oa", "public_services", "production", "routine")
    assert schedule(windows, other).is_open(at("2025-06-10T12:00"))
    seg = schedule(windows).status_at(at("2025-06-10T12:00"))
    assert seg.reason() == "allow window 'nights' (outside all of them)"


def test_allow_windows_are_a_union():
    windows = [ALLOW_NIGHTS, {"name": "weekends", "kind": "allow", "calendar": "non_working_day"}]
    sched = schedule(windows)
    assert sched.is_open(at("2025-06-14T12:00"))     # Saturday
    assert not sched.is_open(at("2025-06-13T12:00"))
    assert not sched.is_open(at("2025-09-28T12:00"))  # make-up Sunday is a working day


def test_no_window_means_open():
    assert schedule([]).decide(at("2025-06-10T10:00")).message().startswith("open (no window applies)")


def test_selector_on_an_unknown_attribute_fails_closed():
    window = parse_windows([{"name": "w", "kind": "deny", "calendar": "non_working_day", "categories": ["core_business"]}], "p.yml")
    with pytest.raises(PolicyError, match="selects by categories but the change's category is unknown"):
        FreezeSchedule(window, Target("ta-core"))


# --- time zones ---------------------------------------------------------------------------------
@pytest.mark.parametrize("controller_tz", ["UTC", "America/New_York", "Asia/Shanghai"])
def test_controller_time_zone_does_not_matter(monkeypatch, controller_tz):
    monkeypatch.setenv("TZ", controller_tz)
    time.tzset()
    try:
        sched = schedule([TRADING, ALLOW_NIGHTS])
        # 2025-06-10 01:15 UTC is 09:15 in Shanghai: the trading session starts.
        assert not sched.is_open(dt.datetime(2025, 6, 10, 1, 15, tzinfo=UTC))
        assert not sched.is_open(dt.datetime(2025, 6, 10, 1, 14, tzinfo=UTC))   # outside the allow window too
        assert sched.is_open(dt.datetime(2025, 6, 10, 11, 0, tzinfo=UTC))       # 19:00 Shanghai
        assert sched.decide(dt.datetime(2025, 6, 10, 2, 0, tzinfo=UTC)).as_dict()["until"] == "2025-06-10T11:30:00+08:00"
        with pytest.raises(ValueError, match="naive datetime"):
            sched.is_open(dt.datetime(2025, 6, 10, 9, 15))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_window_time_zone_is_its_own():
    utc_window = {"name": "w", "kind": "deny", "cron": "0 1 * * *", "duration": "1h", "timezone": "UTC"}
    sched = schedule([utc_window])
    assert not sched.is_open(at("2025-06-10T09:00"))   # 01:00 UTC
    assert sched.is_open(at("2025-06-10T01:00"))


def test_invalid_time_zone_is_an_error_never_utc():
    with pytest.raises(PolicyError, match=r"policy.yml: freeze_windows\[1\].timezone: unknown time zone 'Asia/Shangai'"):
        parse_windows([TRADING, dict(ALLOW_NIGHTS, timezone="Asia/Shangai")], "policy.yml")
    with pytest.raises(PolicyError, match=r"calendar.timezone: unknown time zone"):
        parse_windows([], "policy.yml", {"timezone": "Mars/Olympus"})


def test_dst_zone_cron_keeps_local_wall_time():
    window = {"name": "w", "kind": "deny", "cron": "0 9 * * *", "duration": "1h", "timezone": "America/New_York"}
    sched = schedule([window])
    ny = ZoneInfo("America/New_York")
    for day in ("2025-03-07", "2025-03-10", "2025-11-03"):      # either side of both DST changes
        assert not sched.is_open(at(day + "T09:30", ny)) and sched.is_open(at(day + "T10:00", ny))


# --- cron -----------------------------------------------------------------------------------------
def test_cron_with_day_of_week():
    sched = schedule([{"name": "fri-night", "kind": "allow", "cron": "0 20 * * FRI", "duration": "6h"}])
    assert sched.is_open(at("2025-06-13T20:00")) and sched.is_open(at("2025-06-14T01:59"))   # Friday night into Saturday
    assert not sched.is_open(at("2025-06-14T02:00")) and not sched.is_open(at("2025-06-12T20:00"))
    ranges = schedule([{"name": "w", "kind": "deny", "cron": "0 12 * * 1-5", "duration": "1h"}])
    assert not ranges.is_open(at("2025-06-09T12:30")) and ranges.is_open(at("2025-06-14T12:30"))
    sunday7 = schedule([{"name": "w", "kind": "deny", "cron": "0 12 * * 7", "duration": "1h"}])
    assert not sunday7.is_open(at("2025-06-15T12:30"))


def test_cron_day_of_month_or_day_of_week_when_both_are_restricted():
    sched = schedule([{"name": "w", "kind": "deny", "cron": "0 0 13 * FRI", "duration": "1d"}])
    assert not sched.is_open(at("2025-06-13T10:00"))      # Friday the 13th
    assert not sched.is_open(at("2025-06-06T10:00"))      # a Friday
    assert not sched.is_open(at("2025-07-13T10:00"))      # the 13th, a Sunday
    assert sched.is_open(at("2025-06-12T10:00"))


@pytest.mark.parametrize("expr,fragment", [
    ("0 20 * *", "needs 5 fields"), ("61 * * * *", "out of range"), ("0 20 * * FUN", "'fun' is not valid"),
    ("*/0 * * * *", "bad step"), ("0 20 30-1 * *", "out of range"),
])
def test_bad_cron_names_the_path(expr, fragment):
    windows = [TRADING, TRADING | {"name": "b"}, {"name": "c", "kind": "deny", "cron": expr, "duration": "1h"}]
    with pytest.raises(PolicyError, match=r"policy.yml: freeze_windows\[2\].cron: .*" + fragment):
        parse_windows(windows, "policy.yml")


# --- across the new year -----------------------------------------------------------------------------
def test_absolute_window_across_the_new_year():
    sched = schedule([{"name": "ny", "kind": "deny", "start": "2025-12-31T18:00", "end": "2026-01-02T09:00"}])
    assert not sched.is_open(at("2025-12-31T23:59")) and not sched.is_open(at("2026-01-01T00:00"))
    assert sched.is_open(at("2026-01-02T09:00"))
    rows = sched.segments(at("2025-12-31T00:00"), at("2026-01-03T00:00"))
    assert [(r.open, r.start, r.end) for r in rows] == [
        (True, at("2025-12-31T00:00").timestamp(), at("2025-12-31T18:00").timestamp()),
        (False, at("2025-12-31T18:00").timestamp(), at("2026-01-02T09:00").timestamp()),
        (True, at("2026-01-02T09:00").timestamp(), at("2026-01-03T00:00").timestamp())]


def test_cron_window_across_the_new_year():
    sched = schedule([{"name": "ny", "kind": "deny", "cron": "0 18 31 12 *", "duration": "40h"}])
    assert not sched.is_open(at("2026-01-02T09:59")) and sched.is_open(at("2026-01-02T10:00"))
    assert sched.decide(at("2026-01-01T12:00")).until == at("2026-01-02T10:00").timestamp()


def test_year_end_close_default_span():
    sched = schedule([{"name": "year-end", "kind": "deny", "calendar": "year_end_close"}])
    # Last trading day of 2025 is Wed 31 Dec; first of 2026 is Mon 5 Jan (1-3 holiday, 4 Jan make-up Sunday).
    assert sched.is_open(at("2025-12-31T14:59"))
    assert not sched.is_open(at("2025-12-31T15:00")) and not sched.is_open(at("2026-01-04T12:00"))
    assert sched.is_open(at("2026-01-05T09:15"))
    # 2024 -> 2025: last trading day Tue 31 Dec 2024, first Thu 2 Jan 2025.
    assert not sched.is_open(at("2025-01-02T09:14")) and sched.is_open(at("2025-01-02T09:15"))


def test_year_end_close_configurable_span_and_the_closing_itself():
    windows = [{"name": "year-end", "kind": "deny", "calendar": "year_end_close",
                "span": {"start": "12-31 00:00", "end": "first_working_day 12:00"},
                "exclude": {"change_types": ["routine"]}}]
    sched = schedule(windows)
    assert not sched.is_open(at("2025-12-31T00:00")) and not sched.is_open(at("2026-01-04T11:59"))
    assert sched.is_open(at("2026-01-04T12:00"))              # make-up Sunday is the first working day
    closing = Target("ta-core", "core_business", "production", "routine")
    assert schedule(windows, closing).is_open(at("2025-12-31T20:00"))   # Art. 28: the closing run itself


def test_year_without_data_fails_closed():
    sched = schedule([TRADING, {"name": "year-end", "kind": "deny", "calendar": "year_end_close"}])
    with pytest.raises(CalendarError, match="calendar has no data for 2027"):
        sched.is_open(at("2027-01-04T10:00"))
    decision = sched.decide(at("2026-12-31T16:00"))
    assert not decision.open and decision.until is None and decision.next_open is None
    assert "calendar has no data for 2027" in decision.message()
    assert sched.is_open(at("2026-12-20T20:00"))                 # earlier in December needs no 2027 data


# --- validation ------------------------------------------------------------------------------------
def test_calendar_settings_validation():
    with pytest.raises(PolicyError, match=r"calendar: unknown key\(s\) \['zone'\]"):
        parse_calendar_settings({"zone": "UTC"}, "p.yml")
    with pytest.raises(PolicyError, match="lead_time_working_days must be a whole number"):
        parse_calendar_settings({}, "p.yml", lead_time=-1)
    with pytest.raises(PolicyError, match="allow_test_clock: must be true or false"):
        parse_calendar_settings({"allow_test_clock": "yes"}, "p.yml")
    assert parse_calendar_settings(None, "p.yml").lead_time == 3


def test_segments_clip_and_merge_across_months():
    sched = schedule([{"name": "w", "kind": "deny", "start": "2025-09-30T15:00", "end": "2025-10-09T09:00"}])
    rows = sched.segments(at("2025-09-30T00:00"), at("2025-10-10T00:00"))
    assert [r.open for r in rows] == [True, False, True]
    assert rows[1].decided_by == ["w"]


def test_bench_target_holds():
    import importlib.util  # noqa: E402 pylint: disable=import-outside-toplevel
    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "..", "bench", "calendar_bench.py")
    spec = importlib.util.spec_from_file_location("calendar_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.run(2025)
    assert result["minutes"] == 525600 and result["windows"] == 10
    assert result["seconds"] <= 2.0, result
