"""base.py: the one home of time parsing, durations, time zones and the canonical JSON that is signed
and hashed. What a policy author or an approver types is read here, so each refusal must name the
field and say how to write it."""
import datetime as dt
import json
import math
import re
from zoneinfo import ZoneInfo

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils import base
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import InputError, PolicyError

CST = dt.timezone(dt.timedelta(hours=8))
SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")


# ---- parse_time: the instants approvals and the CLI carry ----------------------------------------

def test_parse_time_keeps_the_offset_given():
    parsed = base.parse_time("2026-03-02T09:00:00+08:00", "issued_at")
    assert parsed == dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone.utc)
    assert parsed.utcoffset() == dt.timedelta(hours=8)


def test_parse_time_without_offset_is_refused_naming_the_field_and_the_fix():
    with pytest.raises(InputError) as exc:
        base.parse_time("2026-03-02T09:00:00", "--not-after")
    assert str(exc.value) == ("--not-after: '2026-03-02T09:00:00' has no UTC offset; add one, "
                              "e.g. 2026-03-02T09:00:00+08:00")


def test_parse_time_errors_are_value_errors_for_validators():
    """Validators catch ValueError: an InputError must still be one."""
    with pytest.raises(ValueError, match="not_before"):
        base.parse_time("yesterday", "not_before")


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00+08:00", ""])
def test_parse_time_not_a_timestamp(value):
    with pytest.raises(InputError, match=r"^issued_at: .* is not an ISO-8601 timestamp \(e\.g\. 2026-03-02T09:00:00\+08:00\)"):
        base.parse_time(value, "issued_at")


@pytest.mark.parametrize("value", [None, 1772413200, dt.datetime(2026, 3, 2, tzinfo=CST)])
def test_parse_time_wants_text(value):
    with pytest.raises(InputError, match="^planned_start: expected an ISO-8601 timestamp string with offset"):
        base.parse_time(value, "planned_start")


@pytest.mark.parametrize("value", [
    "0001-01-01T00:00:00+08:00",     # overflows when moved to UTC
    "9999-12-31T23:59:59-08:00",     # overflows the other way
    "9000-01-01T00:00:00+00:00",
    "1969-12-31T23:59:59+00:00",
    "1970-01-01T07:00:00+08:00",     # 1970 on the wall clock, 1969 in UTC: the UTC year counts
])
def test_parse_time_out_of_range_years_are_refused(value):
    with pytest.raises(InputError) as exc:
        base.parse_time(value, "not_after")
    assert str(exc.value).startswith(f"not_after: {value!r} is out of range")
    assert "between the years 1970 and 8999" in str(exc.value)


@pytest.mark.parametrize("value", ["1970-01-01T00:00:00+00:00", "8999-12-31T23:59:59+00:00"])
def test_parse_time_edges_of_the_range_are_accepted(value):
    assert base.parse_time(value, "t") == dt.datetime.fromisoformat(value)


# ---- parse_instant: window starts and ends, the test clock -----------------------------------------

def test_parse_instant_reads_naive_text_in_the_window_zone():
    summer = base.parse_instant("2025-07-01T15:00", LONDON, "freeze_windows[0].start")
    assert summer.tzinfo is LONDON
    assert summer.astimezone(dt.timezone.utc) == dt.datetime(2025, 7, 1, 14, 0, tzinfo=dt.timezone.utc)  # BST
    winter = base.parse_instant("2025-12-01T15:00", LONDON, "freeze_windows[0].start")
    assert winter.astimezone(dt.timezone.utc) == dt.datetime(2025, 12, 1, 15, 0, tzinfo=dt.timezone.utc)


def test_parse_instant_defaults_to_shanghai():
    moment = base.parse_instant("2025-09-30T15:00")
    assert moment.utcoffset() == dt.timedelta(hours=8)
    assert moment.astimezone(dt.timezone.utc).hour == 7


def test_parse_instant_keeps_an_explicit_offset_over_the_zone():
    moment = base.parse_instant("2025-09-30T15:00+00:00", SHANGHAI, "now")
    assert moment == dt.datetime(2025, 9, 30, 15, 0, tzinfo=dt.timezone.utc)


def test_parse_instant_takes_dates_and_datetimes():
    """YAML gives a date or a datetime for an unquoted value: both are read in the window zone."""
    assert base.parse_instant(dt.date(2025, 10, 1), SHANGHAI) == dt.datetime(2025, 10, 1, tzinfo=SHANGHAI)
    assert base.parse_instant(dt.datetime(2025, 10, 1, 9, 30), LONDON).tzinfo is LONDON
    aware = dt.datetime(2025, 10, 1, 9, 30, tzinfo=dt.timezone.utc)
    assert base.parse_instant(aware, SHANGHAI) is aware


@pytest.mark.parametrize("value", ["30 Sep 2025", "2025-09-31T10:00"])
def test_parse_instant_bad_text_names_the_field(value):
    with pytest.raises(PolicyError) as exc:
        base.parse_instant(value, SHANGHAI, "freeze_windows[2].end")
    assert str(exc.value) == f"freeze_windows[2].end: {value!r} is not an ISO 8601 date-time: write e.g. 2025-09-30T15:00"


def test_parse_instant_not_text_names_the_field():
    with pytest.raises(PolicyError, match=r"^freeze_windows\[0\]\.start: needs an ISO 8601 date-time"):
        base.parse_instant(20250930, SHANGHAI, "freeze_windows[0].start")


@pytest.mark.parametrize("value", ["1969-06-01T00:00", "9000-01-01T12:00", dt.date(1, 1, 1)])
def test_parse_instant_out_of_range(value):
    with pytest.raises(PolicyError, match=r"^now: .* is out of range: give a time between the years 1970 and 8999"):
        base.parse_instant(value, SHANGHAI, "now")


# ---- parse_duration ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, minutes", [
    ("90m", 90), ("1h30m", 90), ("6h", 360), ("2d", 2880), ("1d2h3m", 1563), (" 1h 30m ", 90),
    ("3660d", 3660 * 1440), ("87840h", 3660 * 1440),
])
def test_parse_duration_accepts(text, minutes):
    assert base.parse_duration(text, "duration") == dt.timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["90", "1.5h", "-5m", "1m30h", "h", "1w", "", None, "P1D", "30s"])
def test_parse_duration_refuses_what_it_cannot_read(text):
    with pytest.raises(PolicyError) as exc:
        base.parse_duration(text, "freeze_windows[1].duration")
    assert str(exc.value) == (f"freeze_windows[1].duration: duration {text!r} is not valid: "
                              "write e.g. 90m, 6h, 1h30m or 2d")


@pytest.mark.parametrize("text", ["0m", "0d0h0m", "0h"])
def test_parse_duration_refuses_zero(text):
    with pytest.raises(PolicyError, match=r"^w\.duration: duration must be positive$"):
        base.parse_duration(text, "w.duration")


@pytest.mark.parametrize("text", ["3661d", "3660d1m", "87841h", "9999999999d", "99999999999999999999m"])
def test_parse_duration_refuses_more_than_max_duration_days(text):
    with pytest.raises(PolicyError) as exc:
        base.parse_duration(text, "w.duration")
    assert str(exc.value).startswith("w.duration: duration ")
    assert str(exc.value).endswith(f"is too large: at most {base.MAX_DURATION_DAYS} days")


# ---- parse_timezone -----------------------------------------------------------------------------------

def test_parse_timezone_gives_the_place():
    assert base.parse_timezone("Asia/Shanghai", "calendar.timezone") == SHANGHAI
    assert base.parse_timezone("  Europe/London ", "calendar.timezone") == LONDON


@pytest.mark.parametrize("name", ["localtime", "Factory", "factory", "posixrules", "posix/Asia/Shanghai", "right/UTC",
                                  "POSIX/Europe/London"])
def test_parse_timezone_refuses_names_that_are_not_places(name):
    with pytest.raises(PolicyError) as exc:
        base.parse_timezone(name, "freeze_windows[0].timezone")
    assert str(exc.value).startswith(f"freeze_windows[0].timezone: {name!r} is not a place's time zone")
    assert "use an IANA name such as Asia/Shanghai" in str(exc.value)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Asia/Shang hai", "../../etc/passwd", "/etc/localtime"])
def test_parse_timezone_unknown_is_an_error_never_utc(name):
    with pytest.raises(PolicyError, match=r"^calendar\.timezone: unknown time zone .*: use an IANA name"):
        base.parse_timezone(name, "calendar.timezone")


@pytest.mark.parametrize("name", [None, "", "   ", 8])
def test_parse_timezone_needs_a_name(name):
    with pytest.raises(PolicyError, match=r"^calendar\.timezone: time zone must be an IANA name"):
        base.parse_timezone(name, "calendar.timezone")


# ---- canonical JSON: what is signed and hashed ----------------------------------------------------

def test_canonical_json_is_independent_of_key_order():
    one = {"b": 1, "a": {"y": [1, 2], "x": None}}
    two = {"a": {"x": None, "y": [1, 2]}, "b": 1}
    assert base.canonical_json(one) == base.canonical_json(two) == '{"a":{"x":null,"y":[1,2]},"b":1}'


def test_canonical_json_keeps_unicode_as_utf8():
    text = base.canonical_json({"person": "张三"})
    assert text == '{"person":"张三"}'
    assert json.loads(text) == {"person": "张三"}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_canonical_json_refuses_nan_and_infinity(value):
    with pytest.raises(ValueError):
        base.canonical_json({"score": value})


def test_canonical_json_refuses_what_is_not_json_data():
    with pytest.raises(TypeError):
        base.canonical_json({"when": dt.datetime(2026, 3, 2, tzinfo=CST)})
    with pytest.raises(TypeError):
        base.canonical_json({"people": {"alice", "bob"}})


# ---- stamps and local-time text ----------------------------------------------------------------------

def test_utc_stamp_is_utc_to_the_microsecond_with_z():
    assert base.utc_stamp(dt.datetime(2026, 3, 2, 9, 0, tzinfo=CST)) == "2026-03-02T01:00:00.000000Z"
    assert base.utc_stamp(dt.datetime(2026, 3, 2, 9, 0, 5, 123, tzinfo=CST)) == "2026-03-02T01:00:05.000123Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", base.utc_stamp())


def test_utcnow_is_aware_utc():
    now = base.utcnow()
    assert now.utcoffset() == dt.timedelta(0)


def test_aware_refuses_naive_and_reads_epoch_seconds_as_utc():
    with pytest.raises(ValueError, match="naive datetime"):
        base.aware(dt.datetime(2026, 3, 2, 9, 0))
    assert base.aware(0) == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def test_fmt_instant_to_the_minute_or_second():
    ts = dt.datetime(2026, 3, 2, 9, 0, tzinfo=CST).timestamp()
    assert base.fmt_instant(ts, SHANGHAI) == "2026-03-02 09:00"
    assert base.fmt_instant(ts + 20, SHANGHAI) == "2026-03-02 09:00:20"
    assert base.fmt_instant(ts, LONDON) == "2026-03-02 01:00"
    assert base.fmt_instant(base.INF, SHANGHAI) == base.fmt_instant(-base.INF, SHANGHAI) == "unknown"


@pytest.mark.parametrize("seconds, text", [
    (0, "0m"), (59, "0m"), (5400, "1h30m"), (3600, "1h"), (86400, "1d (24 elapsed hours)"),
    (90000 + 60, "1d1h1m (25 elapsed hours)"), (2 * 86400 + 1800, "2d30m (48 elapsed hours)"),
])
def test_fmt_duration(seconds, text):
    assert base.fmt_duration(seconds) == text


def test_parse_instant_range_is_the_utc_year():
    """Midnight of 9000 in Shanghai is still 8999 in UTC: the range is checked in UTC, as parse_time does."""
    assert base.parse_instant("9000-01-01T00:00", SHANGHAI).astimezone(dt.timezone.utc).year == 8999


@pytest.mark.parametrize("text, expected", [
    ("2026-03-02T01:00:00.000000Z", "2026-03-02T01:00:00+00:00"),
    ("2026-03-02T09:00:00+08:00", "2026-03-02T01:00:00+00:00"),
    ("2026-03-02T01:00:00", "2026-03-02T01:00:00+00:00"),   # the register's own stamps are UTC
])
def test_read_stamp_reads_the_registers_stamps_as_utc(text, expected):
    assert base.read_stamp(text).astimezone(base.UTC).isoformat() == expected


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-13-01T00:00:00"])
def test_read_stamp_returns_none_for_what_a_report_shows_as_it_is(text):
    assert base.read_stamp(text) is None
