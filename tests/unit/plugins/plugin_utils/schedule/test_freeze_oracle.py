"""The cached, interval-based FreezeSchedule against a brute-force oracle written from the spec."""
import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.calendar import default_calendar
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.freeze import FreezeSchedule
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.windows import Target, parse_windows

CAL = default_calendar()
SH = ZoneInfo("Asia/Shanghai")
POOL = [
    {"name": "trading", "kind": "deny", "calendar": "trading_session"},
    {"name": "nights", "kind": "allow", "cron": "0 19 * * MON-FRI", "duration": "13h"},
    {"name": "golden-week", "kind": "deny", "start": "2025-09-30T15:00", "end": "2025-10-09T09:00"},
    {"name": "days-off", "kind": "allow", "calendar": "non_working_day"},
    {"name": "batch-jobs", "kind": "deny", "cron": "*/20 9-17 * * 1-5", "duration": "10m"},
    {"name": "year-end", "kind": "deny", "calendar": "year_end_close"},
    {"name": "utc-sat", "kind": "allow", "cron": "30 1 * * SAT", "duration": "5h", "timezone": "UTC"},
    {"name": "monthly", "kind": "deny", "cron": "0 22 28-31 * *", "duration": "26h"},
]
WINDOWS = {w.name: w for w in parse_windows(POOL, "oracle")}


def _year_end_active(t):
    for year in (t.astimezone(SH).year - 1, t.astimezone(SH).year):
        if year < min(CAL.available_years()):
            continue   # instants start on 2024-01-10, after the 2023/2024 closing ended
        last = CAL.previous_day(dt.date(year + 1, 1, 1), lambda i: i.trading_day)
        start = dt.datetime.combine(last, dt.time(15, 0), SH)
        if t < start:
            continue
        first = CAL.next_day(dt.date(year, 12, 31), lambda i: i.trading_day)
        if t < dt.datetime.combine(first, dt.time(9, 15), SH):
            return True
    return False


def active(window, t):
    local = t.astimezone(window.tz)
    if window.schedule == "start":
        return window.start <= t.timestamp() < window.end
    if window.schedule == "cron":
        minute = t.replace(second=0, microsecond=0)
        for back in range(int(window.duration // 60) + 1):
            cand = (minute - dt.timedelta(minutes=back)).astimezone(window.tz)
            if (cand.minute in window.cron.minutes and cand.hour in window.cron.hours
                    and window.cron.matches_date(cand.date()) and cand.timestamp() + window.duration > t.timestamp()):
                return True
        return False
    if window.predicate == "trading_session":
        secs = local.hour * 3600 + local.minute * 60 + local.second
        return CAL.is_trading_day(local.date()) and any(s * 60 <= secs < e * 60 for s, e in window.sessions)
    if window.predicate == "non_working_day":
        return not CAL.is_working_day(local.date())
    return _year_end_active(t)


def oracle_open(names, t):
    windows = [WINDOWS[n] for n in names]
    if any(active(w, t) for w in windows if w.kind == "deny"):
        return False
    allows = [w for w in windows if w.kind == "allow"]
    return not allows or any(active(w, t) for w in allows)


@settings(max_examples=400, deadline=None)
@given(st.sets(st.sampled_from(sorted(WINDOWS)), min_size=1, max_size=6),
       st.datetimes(dt.datetime(2024, 1, 10), dt.datetime(2026, 12, 20)),
       st.sampled_from([0, 1, 59]))
def test_schedule_matches_oracle(names, naive, second):
    t = naive.replace(second=second, microsecond=0, tzinfo=SH)
    target = Target("ta-core", "core_business", "production", "version_update")
    schedule = FreezeSchedule([WINDOWS[n] for n in sorted(names)], target)
    assert schedule.is_open(t) == oracle_open(names, t)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(sorted(WINDOWS)), min_size=1, max_size=5),
       st.datetimes(dt.datetime(2024, 1, 10), dt.datetime(2026, 11, 1)))
def test_decision_until_and_next_open_are_consistent(names, naive):
    t = naive.replace(second=0, microsecond=0, tzinfo=SH)
    schedule = FreezeSchedule([WINDOWS[n] for n in sorted(names)], Target("ta-core", "core_business", "production", "version_update"))
    decision = schedule.decide(t)
    if decision.open:
        return
    assert decision.next_open is not None and decision.next_open > t.timestamp()
    assert oracle_open(names, dt.datetime.fromtimestamp(decision.next_open, SH))
    just_before = dt.datetime.fromtimestamp(decision.next_open - 1, SH)
    assert not oracle_open(names, just_before)
    assert decision.until is not None and t.timestamp() < decision.until <= decision.next_open
