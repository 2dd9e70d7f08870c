"""Time to evaluate one year of freeze windows minute by minute, for one system with ten windows.

Acceptance (issue 4): at most 2 s. Run: `.venv/bin/python bench/calendar_bench.py [--year 2025] [--json]`.
The schedule is built from scratch each run (no warm cache), so the figure includes parsing the
windows, loading the calendar data and building every month's timeline.
"""
import argparse
import datetime as dt
import json
import sys
import time
from zoneinfo import ZoneInfo

from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.calendar import WorkCalendar
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.freeze import FreezeSchedule
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.windows import Target, parse_windows

TEN_WINDOWS = [
    {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session"},
    {"name": "year-end-close", "kind": "deny", "calendar": "year_end_close"},
    {"name": "national-day", "kind": "deny", "start": "{y}-09-30T15:00", "end": "{y}-10-09T09:00"},
    {"name": "spring-festival", "kind": "deny", "start": "{y}-01-20T00:00", "end": "{y}-02-25T00:00", "environments": ["prod"]},
    {"name": "month-end-valuation", "kind": "deny", "cron": "0 17 28-31 * *", "duration": "5h", "categories": ["core_business"]},
    {"name": "quarter-close", "kind": "deny", "cron": "0 0 1 1,4,7,10 *", "duration": "2d"},
    {"name": "weekend-maintenance", "kind": "allow", "calendar": "non_working_day"},
    {"name": "weeknight-maintenance", "kind": "allow", "cron": "0 20 * * MON-FRI", "duration": "10h"},
    {"name": "saturday-utc", "kind": "allow", "cron": "0 1 * * SAT", "duration": "3h", "timezone": "UTC"},
    {"name": "other-system", "kind": "deny", "cron": "*/30 9-17 * * *", "duration": "10m", "systems": ["crm"]},
]


def run(year):
    windows_raw = [{k: (v.format(y=year) if isinstance(v, str) else v) for k, v in w.items()} for w in TEN_WINDOWS]
    started = time.perf_counter()
    windows = parse_windows(windows_raw, "bench")
    schedule = FreezeSchedule(
        windows, Target("ta-core", "core_business", "prod", "version_update"), calendar=WorkCalendar())
    tz = ZoneInfo("Asia/Shanghai")
    ts = dt.datetime(year, 1, 1, tzinfo=tz).timestamp()
    end = dt.datetime(year, 12, 31, 23, 59, tzinfo=tz).timestamp()
    minutes = open_minutes = 0
    status = schedule.status_at
    while ts <= end:
        if status(ts).open:
            open_minutes += 1
        minutes += 1
        ts += 60
    elapsed = time.perf_counter() - started
    return {"year": year, "minutes": minutes, "open_minutes": open_minutes, "windows": len(windows),
            "applicable_windows": len(schedule.windows), "seconds": round(elapsed, 3), "target_seconds": 2.0,
            "ok": elapsed <= 2.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.year)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"one year ({result['year']}) minute by minute: {result['minutes']} evaluations, one system, "
              f"{result['windows']} windows ({result['applicable_windows']} apply): {result['seconds']:.3f} s "
              f"(target <= 2 s; {result['open_minutes']} open minutes)")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
