"""`prodgate calendar`: working days, trading days and freeze windows from the command line.

    prodgate calendar days --from 2025-09-26 --to 2025-10-12
    prodgate calendar is-working-day 2025-09-28          # exit 0 working day, 1 not
    prodgate calendar add-working-days 2025-10-09 -3     # 2025-09-28
    prodgate calendar windows --policy P --system S --from T --to T
    prodgate calendar explain --policy P --system S --at T

``--policy`` reads the signed policy through the same loader as the gates; ``--draft`` reads an
unsigned YAML file with ``freeze_windows`` / ``calendar`` sections, to try windows out before
the policy is signed (the output says so).
"""
import argparse
import datetime as dt
import os

import yaml

from ._common import add_json_flag, emit
from .. import freeze_window
from ..errors import PolicyError
from ..workcalendar import default_calendar


def register(subparsers):
    parser = subparsers.add_parser("calendar", help="working days, trading days and freeze windows")
    sub = parser.add_subparsers(dest="calendar_command", metavar="SUBCOMMAND")

    days = sub.add_parser("days", help="one row per day: working day, trading day, holiday, make-up day")
    days.add_argument("--from", dest="start", required=True, type=_date, help="first date (YYYY-MM-DD)")
    days.add_argument("--to", dest="end", required=True, type=_date, help="last date, inclusive")
    add_json_flag(days)
    days.set_defaults(handler=cmd_days)

    working = sub.add_parser("is-working-day", help="exit 0 when DATE is a working day, 1 when not")
    working.add_argument("date", type=_date)
    add_json_flag(working)
    working.set_defaults(handler=cmd_is_working_day)

    add = sub.add_parser("add-working-days", help="the N-th working day after DATE (before it when N < 0)")
    add.add_argument("date", type=_date)
    add.add_argument("count", type=int, metavar="N")
    add_json_flag(add)
    add.set_defaults(handler=cmd_add_working_days)

    windows = sub.add_parser("windows", help="open and frozen intervals for a system, with the window that decides each")
    _target_args(windows)
    windows.add_argument("--from", dest="start", required=True, help="start (date or date-time; policy time zone unless an offset is given)")
    windows.add_argument("--to", dest="end", required=True, help="end (exclusive)")
    add_json_flag(windows)
    windows.set_defaults(handler=cmd_windows)

    explain = sub.add_parser("explain", help="why a change to a system is open or frozen at one instant")
    _target_args(explain)
    explain.add_argument("--at", required=True, help="the instant (date-time; policy time zone unless an offset is given)")
    add_json_flag(explain)
    explain.set_defaults(handler=cmd_explain)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)


def _date(text):
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD") from None


def _target_args(parser):
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--policy", default=os.environ.get("PRODGATE_POLICY"),
                        help="signed policy file (default $PRODGATE_POLICY)")
    source.add_argument("--draft", help="unsigned YAML with freeze_windows/calendar sections (preview only)")
    parser.add_argument("--system", required=True)
    parser.add_argument("--category", help="system category (default: from the policy's system catalogue)")
    parser.add_argument("--environment", default="prod")
    parser.add_argument("--change-type", dest="change_type", default="version_update",
                        choices=freeze_window.CHANGE_TYPES)


def _policy_raw(args):
    if args.draft:
        try:
            with open(args.draft, encoding="utf-8") as handle:
                raw = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(f"{args.draft}: cannot be read ({exc}): check the path and the YAML") from None
        if not isinstance(raw, dict):
            raise PolicyError(f"{args.draft}: must be a mapping with freeze_windows and calendar sections")
        return raw, args.draft, False
    if not args.policy:
        raise PolicyError("no policy: pass --policy FILE (or set PRODGATE_POLICY), or --draft FILE to preview unsigned windows")
    from .. import policy as policy_module  # issue 3's loader: verifies signatures and expiry
    return policy_module.load_policy(args.policy).raw, args.policy, True


def _schedule(args):
    raw, source, verified = _policy_raw(args)
    settings = freeze_window.settings_from_policy(raw, source)
    windows = freeze_window.windows_from_policy(raw, source, settings)
    category = args.category or freeze_window.system_category(raw, args.system)
    target = freeze_window.Target(args.system, category, args.environment, args.change_type)
    return freeze_window.FreezeSchedule(windows, target, settings), source, verified


def _iso(ts, tz):
    return dt.datetime.fromtimestamp(ts, tz).isoformat()


def cmd_days(args):
    if args.end < args.start:
        raise PolicyError("--to is before --from: give an ordered range")
    rows = [info.as_dict() for info in default_calendar().days(args.start, args.end)]

    def text():
        lines = [f"{'date':<10}  {'day':<3}  {'working':<7}  {'trading':<7}  note"]
        for row in rows:
            note = []
            if row["holiday"]:
                note.append(f"{row['holiday']} ({row['holiday_zh']})" if row["holiday_zh"] else row["holiday"])
            if row["makeup_day"]:
                note.append(f"make-up working day for {row['makeup_for']}")
            if row["exchange_closure"]:
                note.append(f"exchanges closed: {row['exchange_closure']}")
            lines.append(f"{row['date']:<10}  {row['weekday']:<3}  {'yes' if row['working_day'] else 'no':<7}  "
                         f"{'yes' if row['trading_day'] else 'no':<7}  {'; '.join(note)}")
        return "\n".join(lines)

    emit(args, rows, text)
    return 0


def cmd_is_working_day(args):
    info = default_calendar().day(args.date)
    what = "a working day" if info.working_day else "not a working day"
    detail = f" (make-up working day for {info.makeup_for})" if info.makeup_for else (f" ({info.holiday})" if info.holiday else "")
    emit(args, info.as_dict(), f"{args.date} is {what}{detail}")
    return 0 if info.working_day else 1


def cmd_add_working_days(args):
    result = default_calendar().add_working_days(args.date, args.count)
    emit(args, {"date": args.date.isoformat(), "working_days": args.count, "result": result.isoformat()}, result.isoformat())
    return 0


def cmd_windows(args):
    schedule, source, verified = _schedule(args)
    tz = schedule.settings.tz
    start = freeze_window.parse_instant(args.start, tz, "--from")
    end = freeze_window.parse_instant(args.end, tz, "--to")
    if end <= start:
        raise PolicyError("--to must be after --from")
    rows = [{"start": _iso(s.start, tz), "end": _iso(s.end, tz), "state": "open" if s.open else "frozen",
             "decided_by": s.decided_by, "reason": s.reason()} for s in schedule.segments(start, end)]
    data = {"policy": source, "verified": verified, "target": schedule.target.as_dict(),
            "timezone": schedule.settings.timezone_name, "intervals": rows}

    def text():
        head = f"{args.system}: {len(rows)} interval(s), {schedule.settings.timezone_name}" + ("" if verified else " [draft policy, not verified]")
        lines = [head]
        for row in rows:
            lines.append(f"{row['start'][:16].replace('T', ' ')} .. {row['end'][:16].replace('T', ' ')}  {row['state']:<6}  {row['reason']}")
        return "\n".join(lines)

    emit(args, data, text)
    return 0


def cmd_explain(args):
    schedule, source, verified = _schedule(args)
    at = freeze_window.parse_instant(args.at, schedule.settings.tz, "--at")
    decision = schedule.decide(at)
    data = decision.as_dict()
    data.update({"policy": source, "verified": verified,
                 "windows": [{"name": w.name, "kind": w.kind, "schedule": w.describe_schedule(),
                              "active": w.name in decision.segment.deny + decision.segment.allow}
                             for w in schedule.windows]})

    def text():
        lines = [f"{args.system} at {data['at']}: {decision.message()}" + ("" if verified else " [draft policy, not verified]")]
        if not schedule.windows:
            lines.append("  no freeze window applies to this change")
        for window in data["windows"]:
            lines.append(f"  {'*' if window['active'] else ' '} {window['kind']:<5} {window['name']}: {window['schedule']}")
        return "\n".join(lines)

    emit(args, data, text)
    return 0 if decision.open else 1
