"""`prodgate calendar`: working days, trading days and freeze windows from the command line.

    prodgate calendar days --from 2025-09-26 --to 2025-10-12
    prodgate calendar is-working-day 2025-09-28          # exit 0 working day, 1 not
    prodgate calendar add-working-days 2025-10-09 -3     # 2025-09-28
    prodgate calendar windows --policy P --system S --from T --to T
    prodgate calendar explain --policy P --system S [--at T]      # default: now
    prodgate calendar status [--policy P]                       # last covered date, days left
    prodgate calendar draft --year 2027 --source holidays --out calendar-2027.yml
    prodgate calendar diff calendar-2027.yml --against exchange_calendars
    prodgate calendar sign calendar-2027.yml --key governance.key --policy P

``--policy`` reads the signed policy through the same loader as the gates, with the calendar
packs it names; ``--draft`` reads an unsigned YAML file with ``freeze_windows`` / ``calendar``
sections, to try windows out before the policy is signed (the output says so).
"""
import argparse
import datetime as dt
import os
import sys
import tempfile

import yaml

from ._common import add_group, add_json_flag, emit
from ._output import EXIT_FAILED, add_list_flags, output_rows
from .. import input_files
from ..governance import calendar_pack, dsse
from ..errors import CalendarError, PolicyError
from ..schedule.calendar import default_calendar
from zoneinfo import ZoneInfo
from ..base import DEFAULT_TIMEZONE, parse_instant
from ..governance.window_gate import system_category
from ..schedule.settings import settings_from_policy
from ..schedule.freeze import FreezeSchedule
from ..schedule.windows import CHANGE_TYPES, Target, windows_from_policy


def register(subparsers):
    sub = add_group(subparsers, "calendar", "calendar_command", help="working days, trading days and freeze windows")

    days = sub.add_parser("days", help="one row per day: working day, trading day, holiday, make-up day")
    days.add_argument("--from", dest="start", required=True, type=_date, help="first date (YYYY-MM-DD)")
    days.add_argument("--to", dest="end", required=True, type=_date, help="last date, inclusive")
    _pack_args(days)
    add_json_flag(days)
    days.set_defaults(handler=cmd_days)

    working = sub.add_parser("is-working-day", help="exit 0 when DATE is a working day, 1 when not")
    working.add_argument("date", type=_date)
    _pack_args(working)
    add_json_flag(working)
    working.set_defaults(handler=cmd_is_working_day)

    add = sub.add_parser("add-working-days", help="the N-th working day after DATE (before it when N < 0)")
    add.add_argument("date", type=_date)
    add.add_argument("count", type=int, metavar="N")
    _pack_args(add)
    add_json_flag(add)
    add.set_defaults(handler=cmd_add_working_days)

    windows = sub.add_parser("windows", help="open and frozen intervals for a system, with the window that decides each")
    _target_args(windows)
    windows.add_argument("--from", dest="start", required=True, help="start (date or date-time; policy time zone unless an offset is given)")
    windows.add_argument("--to", dest="end", required=True, help="end (exclusive)")
    add_json_flag(windows)
    windows.set_defaults(handler=cmd_windows)

    explain = sub.add_parser("explain", help="why a change to a system is open or frozen at one instant (default now)")
    _target_args(explain)
    explain.add_argument("--at", help="the instant (date-time; policy time zone unless an offset is given; default now)")
    add_json_flag(explain)
    explain.set_defaults(handler=cmd_explain)

    status = sub.add_parser("status", help="last date each calendar has data for, and the days left")
    status.add_argument("--policy", default=os.environ.get("PRODGATE_POLICY"),
                        help="signed policy whose calendar.packs count too (default $PRODGATE_POLICY; without it: the collection's data)")
    status.add_argument("--root", help="pinned governance root that verifies the policy and its packs")
    status.add_argument("--collection", action="store_true", help="the collection's own data only, even when a policy is set")
    status.add_argument("--at", type=_date, help="count the days left from this date (default today, Asia/Shanghai)")
    status.add_argument("--warn-days", type=int, dest="warn_days",
                        help=f"exit 1 when the data ends within N days (default: the policy's calendar.data_warning_days, "
                             f"else {calendar_pack.DEFAULT_WARNING_DAYS})")
    add_list_flags(status, default_limit=0)
    status.set_defaults(handler=cmd_status)

    draft = sub.add_parser("draft", help="draft a year's calendar pack from an installed library, for review")
    draft.add_argument("--year", type=int, required=True)
    draft.add_argument("--source", required=True, choices=calendar_pack.SOURCES)
    draft.add_argument("--out", help="write the draft here (refuses to overwrite); default: print it")
    draft.set_defaults(handler=cmd_draft)

    diff = sub.add_parser("diff", help="days on which a draft or pack differs from a library or another file")
    diff.add_argument("pack", help="the draft or pack file")
    diff.add_argument("--against", required=True, help=f"one of {', '.join(calendar_pack.SOURCES)}, or another pack/year file")
    add_list_flags(diff, default_limit=0)
    diff.set_defaults(handler=cmd_diff)

    sign = sub.add_parser("sign", help="add your governance signature to a reviewed calendar pack")
    sign.add_argument("pack")
    sign.add_argument("--key", required=True, help="governance private key")
    trust = sign.add_mutually_exclusive_group()
    trust.add_argument("--root", help="pinned governance root listing the governance keys")
    trust.add_argument("--policy", default=os.environ.get("PRODGATE_POLICY"),
                       help="signed policy whose governance keys sign packs (default $PRODGATE_POLICY)")
    sign.add_argument("--out", help="write the signed pack here instead of in place")
    from ._approval_args import add_passphrase_flags  # pylint: disable=import-outside-toplevel
    add_passphrase_flags(sign)
    add_json_flag(sign)
    sign.set_defaults(handler=cmd_sign)


def _date(text):
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD") from None


def _pack_args(parser):
    parser.add_argument("--policy", help="also use the calendar packs this signed policy names (default: the collection's years)")
    parser.add_argument("--root", help="pinned governance root that verifies the policy and its packs")


def _day_calendar(args):
    if not args.policy:
        return default_calendar()
    from ..governance import policy as policy_module  # pylint: disable=import-outside-toplevel
    pol = policy_module.load_policy(args.policy, root=args.root)
    return calendar_pack.calendar_for_policy(pol.raw, pol.path, args.root)


def _target_args(parser):
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--policy", default=os.environ.get("PRODGATE_POLICY"),
                        help="signed policy file (default $PRODGATE_POLICY)")
    source.add_argument("--draft", help="unsigned YAML with freeze_windows/calendar sections (preview only)")
    parser.add_argument("--root", help="pinned governance root that verifies the policy and its calendar packs")
    parser.add_argument("--system", required=True)
    parser.add_argument("--category", help="system category (default: from the policy's system catalogue)")
    parser.add_argument("--environment", default="prod")
    parser.add_argument("--change-type", dest="change_type", default="version_update",
                        choices=CHANGE_TYPES)


def _policy_raw(args):
    if args.draft:
        # Read like the signed policy: a regular file, 16 MiB, no YAML aliases (input_files).
        text = input_files.read_text(args.draft, "draft", PolicyError, fix="; check the path")
        raw = input_files.parse_yaml(text, f"draft {args.draft}", yaml.SafeLoader, PolicyError) or {}
        if not isinstance(raw, dict):
            raise PolicyError(f"{args.draft}: must be a mapping with freeze_windows and calendar sections")
        return raw, args.draft, False
    if not args.policy:
        raise PolicyError("no policy: pass --policy FILE (or set PRODGATE_POLICY), or --draft FILE to preview unsigned windows")
    from ..governance import policy as policy_module  # issue 3's loader: verifies signatures and expiry
    policy = policy_module.load_policy(args.policy, root=getattr(args, "root", None))
    policy.system(args.system)  # a system the policy does not know is refused, as the gates refuse it
    return policy.raw, args.policy, True


def _calendar(raw, source, verified, args):
    """The collection's years plus the packs a verified policy names (a draft's packs are not read)."""
    if not verified:
        return default_calendar()
    return calendar_pack.calendar_for_policy(raw, source, getattr(args, "root", None))


def _schedule(args):
    raw, source, verified = _policy_raw(args)
    settings = settings_from_policy(raw, source)
    windows = windows_from_policy(raw, source, settings)
    category = args.category or system_category(raw, args.system)
    target = Target(args.system, category, args.environment, args.change_type)
    cal = _calendar(raw, source, verified, args)
    return FreezeSchedule(windows, target, settings, cal), source, verified


def _iso(ts, tz):
    return dt.datetime.fromtimestamp(ts, tz).isoformat()


def cmd_days(args):
    if args.end < args.start:
        raise PolicyError("--to is before --from: give an ordered range")
    rows = [info.as_dict() for info in _day_calendar(args).days(args.start, args.end)]

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
    info = _day_calendar(args).day(args.date)
    what = "a working day" if info.working_day else "not a working day"
    detail = f" (make-up working day for {info.makeup_for})" if info.makeup_for else (f" ({info.holiday})" if info.holiday else "")
    emit(args, info.as_dict(), f"{args.date} is {what}{detail}")
    return 0 if info.working_day else 1


def cmd_add_working_days(args):
    result = _day_calendar(args).add_working_days(args.date, args.count)
    emit(args, {"date": args.date.isoformat(), "working_days": args.count, "result": result.isoformat()}, result.isoformat())
    return 0


def cmd_windows(args):
    schedule, source, verified = _schedule(args)
    tz = schedule.settings.tz
    start = parse_instant(args.start, tz, "--from")
    end = parse_instant(args.end, tz, "--to")
    if end <= start:
        raise PolicyError("--to must be after --from")
    segments, data_ends, note = _segments_with_data(schedule, start, end)
    rows = [{"start": _iso(s.start, tz), "end": _iso(s.end, tz), "state": "open" if s.open else "frozen",
             "decided_by": s.decided_by, "reason": s.reason()} for s in segments]
    data = {"policy": source, "verified": verified, "target": schedule.target.as_dict(),
            "timezone": schedule.settings.timezone_name, "intervals": rows, "complete": note is None,
            "data_ends": data_ends, "note": note}

    def text():
        head = f"{args.system}: {len(rows)} interval(s), {schedule.settings.timezone_name}" + ("" if verified else " [draft policy, not verified]")
        lines = [head]
        for row in rows:
            lines.append(f"{_shown(row['start'])} .. {_shown(row['end'])}  {row['state']:<6}  {row['reason']}")
        if note:
            lines.append(f"unknown after {_shown(rows[-1]['end']) if rows else _shown(start.isoformat())}: {note}")
        return "\n".join(lines)

    emit(args, data, text)
    return 0


def _shown(iso):
    """An ISO time as the table shows it: to the minute, to the second when not a whole minute."""
    text = iso.replace("T", " ")
    return text[:19] if text[17:19] not in ("", "00") or "." in text[:26] else text[:16]


def _segments_with_data(schedule, start, end):
    """(segments, data end, note): the intervals up to where the calendar data ends, and why the
    rest is unknown, instead of no answer at all when the range crosses into a year without data."""
    try:
        return schedule.segments(start, end), None, None
    except CalendarError as exc:
        note = str(exc)
    tz = schedule.settings.tz
    last = schedule.calendar.last_covered_date(start.astimezone(tz).date())
    if last is None:
        raise CalendarError(note)
    limit = dt.datetime(last.year, last.month, last.day, tzinfo=tz) + dt.timedelta(days=1)
    for _attempt in range(3):   # a window in a zone ahead of the policy's may need a day less
        if limit <= start:
            break
        try:
            return schedule.segments(start, min(end, limit)), last.isoformat(), note
        except CalendarError:
            limit -= dt.timedelta(days=1)
    raise CalendarError(note)


def cmd_explain(args):
    schedule, source, verified = _schedule(args)
    if args.at:
        at = parse_instant(args.at, schedule.settings.tz, "--at")
    else:
        at = dt.datetime.now(dt.timezone.utc).astimezone(schedule.settings.tz)
    decision = schedule.decide(at)
    data = decision.as_dict()
    warning = calendar_pack.coverage_warning(schedule.calendar, at.astimezone(schedule.settings.tz).date(),
                                             schedule.settings.data_warning_days)
    data["warnings"] = [warning] if warning else []
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
        lines.extend(f"WARNING: {w}" for w in data["warnings"])
        return "\n".join(lines)

    emit(args, data, text)
    return 0 if decision.open else 1


# --- calendar packs: status, draft, diff, sign ----------------------------------------------------
def cmd_status(args):
    today = args.at or dt.datetime.now(ZoneInfo(DEFAULT_TIMEZONE)).date()
    warn = args.warn_days
    if args.policy and not args.collection:
        from ..governance import policy as policy_module  # pylint: disable=import-outside-toplevel
        pol = policy_module.load_policy(args.policy, root=args.root)
        cal = calendar_pack.calendar_for_policy(pol.raw, pol.path, args.root)
        if warn is None:
            warn = settings_from_policy(pol.raw, pol.path).data_warning_days
    else:
        cal = default_calendar()
    if warn is None:
        warn = calendar_pack.DEFAULT_WARNING_DAYS
    rows = calendar_pack.coverage(cal, today)
    for row in rows:
        row["warning"] = row["days_left"] is None or row["days_left"] < warn
    columns = [("CALENDAR", "calendar"), ("LAST DATE", lambda r: r["last_date"] or f"none for {today.year}"),
               ("DAYS LEFT", "days_left"), ("FROM", lambda r: (r["last_year_from"] or "") + (" (provisional)" if r["provisional"] else "")),
               ("FILE", "last_year_path")]
    output_rows(args, rows, columns, what="calendars")
    if any(r["warning"] for r in rows):
        last = rows[0]["last_date"]
        year = int(last[:4]) + 1 if last else today.year
        print(f"prodgate: calendar data ends {last or 'before ' + str(today)} (within {warn} days of {today}): "
              f"`prodgate calendar draft --year {year} --source holidays`, review, sign, name the pack in the policy",
              file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_draft(args):
    doc = calendar_pack.draft(args.year, args.source)
    text = calendar_pack.draft_text(doc)
    if not args.out:
        print(text, end="")
        return 0
    try:
        with open(args.out, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise CalendarError(f"{args.out} exists: choose another --out or remove it (a draft never overwrites a file)") from None
    except OSError as exc:
        raise CalendarError(f"{args.out}: cannot be written ({exc.strerror})") from None
    notes = doc["provenance"]["notes"]
    print(f"wrote draft {args.out} for {args.year} from {args.source} {doc['provenance']['library_version']} (provisional)")
    for note in notes:
        print(f"  note: {note}")
    print(f"next: compare it with the State Council notice and the exchanges' notices "
          f"(`prodgate calendar diff {args.out} --against <source>`), edit, then `prodgate calendar sign {args.out}`")
    return 0


def cmd_diff(args):
    doc, _digest = calendar_pack.read_pack(args.pack)
    result = calendar_pack.diff(doc, args.pack, args.against)
    for note in result["notes"]:
        print(f"prodgate: note: {note}", file=sys.stderr)
    columns = [("DATE", "date"), ("DAY", "weekday"), ("FIELD", "field"),
               ("DRAFT", lambda r: "yes" if r["draft"] else "no"), (result["against"].upper(), lambda r: "yes" if r["source"] else "no")]
    output_rows(args, result["differences"], columns, what=f"differences from {result['against']}")
    return EXIT_FAILED if result["differences"] else 0


def cmd_sign(args):
    from ..governance import policy as policy_module  # pylint: disable=import-outside-toplevel
    from ._approval_args import read_passphrase  # pylint: disable=import-outside-toplevel
    doc, _digest = calendar_pack.read_pack(args.pack)
    problems = calendar_pack.check_pack(doc, args.pack)
    if problems:
        raise CalendarError(f"refusing to sign {args.pack}: " + " | ".join(problems))
    if args.root:
        governance = policy_module.load_root(args.root)
    elif args.policy:
        governance = policy_module.read_policy_document(args.policy).get("governance")
    else:
        raise CalendarError("name the governance keys: --root FILE (the pinned root) or --policy FILE")
    if not isinstance(governance, dict) or not isinstance(governance.get("keys"), list):
        raise CalendarError(f"{args.root or args.policy}: has no governance keys")
    key = dsse.load_private_key(args.key, read_passphrase(args))
    keyid = dsse.keyid_of(dsse.public_key_hex(key.public_key()))
    if keyid not in {dsse.keyid_of(k["public_key"]) for k in governance["keys"] if k.get("revoked") is not True}:
        raise CalendarError(f"key {keyid[:16]} is not one of the governance keys of {args.root or args.policy}: "
                            "calendar packs are signed by the governance key holders, like the policy")
    calendar_pack.sign_pack(doc, key)
    out = args.out or args.pack
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out)), prefix=".calendar-pack-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(calendar_pack.dump_pack(doc))
    os.replace(tmp, out)
    _doc, digest = calendar_pack.read_pack(out)
    count, threshold = len(doc["signatures"]), governance["threshold"]
    ref = {"file": os.path.basename(out), "sha256": digest, "version": doc["version"]}
    data = {"pack": out, "year": doc["year"], "version": doc["version"], "keyid": keyid, "signatures": count,
            "threshold": threshold, "sha256": digest, "policy_reference": ref}
    emit(args, data, lambda: "\n".join([
        f"signed {out} ({doc['year']}, version {doc['version']}) with governance key {keyid[:16]} "
        f"({count} signature(s), threshold {threshold})",
        "when every signer has signed, name it in the policy beside it and re-sign the policy:",
        "  calendar:",
        "    packs:",
        f"      - {{file: {ref['file']}, sha256: {digest}, version: {doc['version']}}}"]))
    return 0
