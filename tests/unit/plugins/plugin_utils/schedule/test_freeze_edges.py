"""The freeze-window edges of issue 14: DST days, zones that are not places, `until` across deny
windows, times to the second, durations in days, and the calendar-data warning."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import PolicyError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.window_gate import evaluate_change
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.freeze import FreezeSchedule
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.settings import parse_calendar_settings
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.windows import Target, parse_windows

SH = ZoneInfo("Asia/Shanghai")
TARGET = Target("ta-core", "core_business", "production", "version_update")
ONE = dt.timedelta(microseconds=1)


def at(text, tz=SH):
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def schedule(windows, calendar_section=None):
    settings = parse_calendar_settings(calendar_section, "policy.yml")
    return FreezeSchedule(parse_windows(windows, "policy.yml", settings=settings), TARGET, settings)


# --- trading sessions on a weekday the clocks change --------------------------------------------
@pytest.mark.parametrize("zone,day", [
    ("Africa/Cairo", "2025-04-25"),     # Friday: 00:00 -> 01:00 (midnight does not exist)
    ("Asia/Jerusalem", "2025-03-28"),   # Friday: 02:00 -> 03:00
    ("America/New_York", "2025-03-10"),  # control: the change was on Sunday, Monday is ordinary
])
def test_sessions_keep_wall_clock_times_on_a_weekday_dst_change(zone, day):
    tz = ZoneInfo(zone)
    sched = schedule([{"name": "sessions", "kind": "deny", "calendar": "trading_session"}], {"timezone": zone})
    for start, end in (("09:15", "11:30"), ("13:00", "15:00")):
        assert sched.is_open(at(f"{day}T{start}", tz) - ONE), (zone, start)
        assert not sched.is_open(at(f"{day}T{start}", tz)), (zone, start)      # was open an hour longer
        assert not sched.is_open(at(f"{day}T{end}", tz) - ONE), (zone, end)
        assert sched.is_open(at(f"{day}T{end}", tz)), (zone, end)
    decision = sched.decide(at(f"{day}T10:00", tz))
    assert f"until {day} 11:30 {zone}" in decision.message()


def test_non_working_day_spans_local_midnight_to_midnight_on_a_dst_day():
    tz = ZoneInfo("Africa/Cairo")
    sched = schedule([{"name": "days-off", "kind": "deny", "calendar": "non_working_day", "timezone": tz.key}])
    # 2025-04-26 is a Saturday; Friday 25th is the DST day (23 hours long) and a working day.
    assert sched.is_open(at("2025-04-25T23:59:59", tz))
    assert not sched.is_open(at("2025-04-26T00:00", tz))


# --- zones that are not places ------------------------------------------------------------------
@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "posix/Asia/Shanghai", "right/Asia/Shanghai",
                                  "Right/UTC", "LOCALTIME"])
def test_zones_that_are_not_places_are_refused(zone):
    with pytest.raises(PolicyError, match=r"freeze_windows\[0\]\.timezone: .* is not a place's time zone .*use an IANA name"):
        parse_windows([{"name": "w", "kind": "deny", "cron": "0 20 * * *", "duration": "1h", "timezone": zone}], "policy.yml")
    with pytest.raises(PolicyError, match=r"calendar\.timezone: .* is not a place's time zone"):
        parse_calendar_settings({"timezone": zone}, "policy.yml")


def test_real_zones_still_accepted():
    for zone in ("Asia/Shanghai", "UTC", "Etc/GMT-8", "Europe/London"):
        parse_windows([{"name": "w", "kind": "deny", "cron": "0 20 * * *", "duration": "1h", "timezone": zone}], "policy.yml")


# --- until includes a deny window that takes over -----------------------------------------------
def test_until_includes_a_deny_window_that_starts_where_the_first_ends():
    sched = schedule([
        {"name": "release-freeze", "kind": "deny", "start": "2025-06-10T10:00", "end": "2025-06-10T11:30"},
        {"name": "audit", "kind": "deny", "start": "2025-06-10T11:30", "end": "2025-06-10T12:45"},
    ])
    decision = sched.decide(at("2025-06-10T10:00"))
    assert decision.message() == ("frozen by deny window 'release-freeze' until 2025-06-10 12:45 Asia/Shanghai; "
                                  "next open slot 2025-06-10 12:45 Asia/Shanghai")


def test_until_includes_an_overlapping_deny_window():
    sched = schedule([
        {"name": "a", "kind": "deny", "start": "2025-06-10T10:00", "end": "2025-06-10T11:30"},
        {"name": "b", "kind": "deny", "start": "2025-06-10T11:00", "end": "2025-06-10T12:30"},
    ])
    assert sched.decide(at("2025-06-10T10:15")).until == at("2025-06-10T12:30").timestamp()


def test_until_of_a_deny_freeze_stops_where_only_allow_windows_keep_it_frozen():
    sched = schedule([
        {"name": "a", "kind": "deny", "start": "2025-06-10T10:00", "end": "2025-06-10T11:30"},
        {"name": "evenings", "kind": "allow", "cron": "0 19 * * *", "duration": "2h"},
    ])
    decision = sched.decide(at("2025-06-10T10:15"))
    assert decision.until == at("2025-06-10T11:30").timestamp()       # the deny freeze ends there
    assert decision.next_open == at("2025-06-10T19:00").timestamp()   # the change still waits for the allow window


def test_until_of_an_allow_freeze_is_when_a_deny_window_takes_over():
    sched = schedule([{"name": "trading", "kind": "deny", "calendar": "trading_session"},
                      {"name": "evenings", "kind": "allow", "cron": "0 19 * * *", "duration": "12h"}])
    decision = sched.decide(at("2025-06-10T08:00"))
    assert decision.until == at("2025-06-10T09:15").timestamp()
    assert decision.next_open == at("2025-06-10T19:00").timestamp()


# --- times to the second ------------------------------------------------------------------------
def test_times_that_are_not_whole_minutes_are_shown_to_the_second():
    sched = schedule([{"name": "settlement", "kind": "deny", "start": "2025-06-10T14:00", "end": "2025-06-10T15:18:20"}])
    assert sched.decide(at("2025-06-10T15:00")).message() == (
        "frozen by deny window 'settlement' until 2025-06-10 15:18:20 Asia/Shanghai; next open slot 2025-06-10 15:18:20 Asia/Shanghai")
    assert sched.windows[0].describe_schedule() == "2025-06-10 14:00 to 2025-06-10 15:18:20 Asia/Shanghai"
    assert "until 2025-06-10 14:00 Asia/Shanghai" in sched.decide(at("2025-06-10T13:00")).message()


# --- durations in days count elapsed hours ------------------------------------------------------
def test_a_duration_in_days_counts_elapsed_hours_and_says_so():
    berlin = ZoneInfo("Europe/Berlin")
    window = {"name": "weekend", "kind": "deny", "cron": "0 20 * * SAT", "duration": "1d", "timezone": "Europe/Berlin"}
    sched = schedule([window])
    # Clocks go forward on Sunday 2025-03-30: 24 elapsed hours from Saturday 20:00 end at 21:00.
    assert not sched.is_open(at("2025-03-30T20:30", berlin))
    assert sched.is_open(at("2025-03-30T21:00", berlin))
    assert sched.windows[0].describe_schedule() == "cron '0 20 * * SAT' for 1d (24 elapsed hours) (Europe/Berlin)"
    assert "elapsed" not in schedule([dict(window, duration="6h")]).windows[0].describe_schedule()


# --- the calendar data warning ------------------------------------------------------------------
POLICY = {"freeze_windows": [{"name": "trading", "kind": "deny", "calendar": "trading_session"}]}


def test_results_warn_when_the_data_ends_within_60_days():
    result = evaluate_change(POLICY, "policy.yml", TARGET, at("2026-11-29T20:00"))
    assert result["allowed"] and result["calendar_data_ends"] == "2026-12-31"
    assert result["warnings"] == [result["window"]["warning"]]
    assert result["warnings"][0].startswith("calendar data ends 2026-12-31 (32 day(s) after 2026-11-29, warning at 60): "
                                            "add 2027 before then: `prodgate calendar draft --year 2027 --source holidays`")
    assert "WARNING: calendar data ends 2026-12-31" in result["message"]


def test_no_warning_far_from_the_end_and_the_period_is_configurable():
    assert evaluate_change(POLICY, "policy.yml", TARGET, at("2026-06-01T20:00"))["warnings"] == []
    quiet = dict(POLICY, calendar={"data_warning_days": 30})
    assert evaluate_change(quiet, "policy.yml", TARGET, at("2026-11-29T20:00"))["warnings"] == []
    loud = dict(POLICY, calendar={"data_warning_days": 400})
    assert evaluate_change(loud, "policy.yml", TARGET, at("2026-06-01T20:00"))["warnings"]
    with pytest.raises(PolicyError, match="data_warning_days: a whole number of days >= 0"):
        parse_calendar_settings({"data_warning_days": "soon"}, "policy.yml")
