"""The facts behind the report, gathered once: changes (executed and planned), month calendars
per system, register health, calendar data status and the Art. 20(7) filings.

Everything shown is computed here, in Python with unit tests; the templates only lay it out.
"""
import calendar as _calendar
import datetime as _dt
import json
import os

from ..base import read_stamp
from ..governance import approvals as approvals_mod
from ..governance import dsse
from ..errors import CalendarError, ProdgateError
from ..governance.window_gate import system_category
from ..schedule.settings import settings_from_policy
from ..schedule.freeze import FreezeSchedule
from ..schedule.windows import CHANGE_TYPES, Target, windows_from_policy
from ..register.query import change_form
from . import form as form_mod
from .records import signer

MLPS_FILING_DAYS = 30  # Art. 20(7): file within 30 days of going live
_DAY = _dt.timedelta(days=1)


def slug(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


# ---- changes ------------------------------------------------------------------------------------

def executed_changes(view, tz, analyses=None, gate_of=None):
    """[change dict] of every change id in the register, with its document form and its day.
    ``gate_of(change id)``: how it went through the gate (``register.audit.gate_status``)."""
    analyses = analyses or {}
    ids = []
    for run in sorted(view.runs.values(), key=lambda r: r["first_seq"]):
        cid = ((run.get("open") or {}).get("change") or {}).get("id")
        if cid and cid not in ids:
            ids.append(cid)
    out = []
    for cid in ids:
        form = change_form(view, cid)
        opens = [r.get("open") or {} for r in view.runs.values()
                 if ((r.get("open") or {}).get("change") or {}).get("id") == cid]
        form["break_glass"] = any(o.get("break_glass") or (o.get("change") or {}).get("break_glass") for o in opens)
        if gate_of is not None:
            form["gate"] = gate_of(cid)
        doc = form_mod.document(form, analyses.get(cid), tz)
        started = read_stamp((form.get("runs") or [{}])[0].get("started"))
        doc["day"] = started.astimezone(tz).date() if started else None
        doc["page"] = f"change-{slug(cid)}.html"
        doc["form"] = form
        out.append(doc)
    return out


def planned_changes(policy, envelopes, tz):
    """Changes planned by a signed plan submission (Art. 17): {change id, system, day, by}."""
    out, seen = [], set()
    for env in envelopes:
        try:
            person, _keyid, statement = signer(policy, env, dsse.INTOTO_PAYLOAD_TYPE)
        except (ValueError, TypeError):
            continue
        pred = statement.get("predicate") or {}
        if pred.get("stage") != "plan_submission" or pred.get("person") != person or not pred.get("planned_start"):
            continue
        start = read_stamp(pred["planned_start"])
        key = (pred.get("change_id"), pred.get("planned_start"))
        if start is None or key in seen:
            continue
        seen.add(key)
        out.append({"change_id": pred.get("change_id"), "system": pred.get("system"), "day": start.astimezone(tz).date(),
                    "time": start.astimezone(tz).strftime("%H:%M"), "by": person, "type": pred.get("change_type"),
                    "version": pred.get("version")})
    return sorted(out, key=lambda p: (p["day"], p["time"]))


def load_envelopes(root):
    """Every envelope under an evidence root (a folder of change folders, a folder, or a bundle)."""
    out = []
    if not root or not os.path.exists(root):
        return out
    if os.path.isfile(root):
        return approvals_mod.load_evidence(root)
    for folder, _dirs, files in sorted(os.walk(root)):
        if any(f.endswith(".json") for f in files):
            try:
                out += approvals_mod.load_evidence(folder)
            except ProdgateError:
                continue
    return out


# ---- the calendar -------------------------------------------------------------------------------

def _day_freezes(schedule, day, tz):
    """[(window name, 'HH:MM-HH:MM' or 'all day', is trading session)] of deny windows on ``day``."""
    start = _dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    end = start + _DAY
    by_name = {}
    for seg in schedule.segments(start, end):
        for name in seg.deny:
            by_name.setdefault(name, []).append((seg.start, seg.end))
    trading = {w.name for w in schedule.windows if getattr(w, "predicate", None) == "trading_session"}
    out = []
    for name, spans in by_name.items():
        covered = sum(b - a for a, b in spans)
        if covered >= 86400 - 1:
            when = "all day"
        else:
            when = ", ".join(f"{_dt.datetime.fromtimestamp(a, tz):%H:%M}-{_dt.datetime.fromtimestamp(b, tz):%H:%M}"
                             .replace("-00:00", "-24:00") for a, b in spans)
        out.append({"name": name, "when": when, "all_day": when == "all day", "trading": name in trading})
    return out


def month_grid(year, month, cal, schedules, changes, planned, today):
    """Weeks (Monday first) of day cells for one month. ``schedules``: {system: FreezeSchedule}."""
    weeks = []
    for week in _calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        cells = []
        for day in week:
            cell = {"date": day, "in_month": day.month == month, "today": day == today, "changes": [], "planned": [],
                    "freezes": [], "working": None, "trading": None, "holiday": None, "makeup_for": None,
                    "no_data": False}
            if day.month == month:
                try:
                    info = cal.day(day)
                    cell.update(working=info.working_day, trading=info.trading_day, holiday=info.holiday,
                                makeup_for=info.makeup_for, closure=info.closure)
                except CalendarError:
                    cell["no_data"] = True
                seen = {}
                for system, per_type in schedules.items():
                    for schedule in per_type:
                        if cell["no_data"]:
                            break
                        try:
                            for fr in _day_freezes(schedule, day, schedule.settings.tz):
                                entry = seen.setdefault(fr["name"], dict(fr, systems=[]))
                                if system not in entry["systems"]:
                                    entry["systems"].append(system)
                        except CalendarError:
                            cell["no_data"] = True
                cell["freezes"] = sorted(seen.values(), key=lambda f: (f["trading"], f["name"]))
                cell["changes"] = [c for c in changes if c["day"] == day]
                cell["planned"] = [p for p in planned if p["day"] == day]
            cells.append(cell)
        weeks.append(cells)
    return {"year": year, "month": month, "title": f"{_calendar.month_name[month]} {year}", "weeks": weeks,
            "id": f"{year}-{month:02d}"}


def schedules_for(policy, cal, systems):
    """{system: [FreezeSchedule per change type]}: the calendar shows a window when it freezes any
    type of production change of the system (a window may exclude some types, e.g. routine)."""
    settings = settings_from_policy(policy.raw, policy.path)
    windows = windows_from_policy(policy.raw, policy.path, settings)
    out = {}
    for system in systems:
        category = system_category(policy.raw, system)
        out[system] = [FreezeSchedule(windows, Target(system, category, "production", change_type), settings, cal)
                       for change_type in CHANGE_TYPES]
    return out, settings


def months_between(first, last):
    out, y, m = [], first[0], first[1]
    while (y, m) <= tuple(last):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# ---- Art. 20(7) ---------------------------------------------------------------------------------

def mlps_rows(policy, changes, filings, today):
    """Systems graded MLPS level 2 or above: go-live, the 30-day filing deadline, filing, status."""
    rows = []
    for system in policy.raw.get("systems") or []:
        level = system.get("mlps_level")
        if level is None and isinstance(system.get("mlps"), dict):
            level = system["mlps"].get("level")
        if not isinstance(level, int) or level < 2:
            continue
        sid = system.get("id")
        go_live = system.get("go_live")
        go_live = _dt.date.fromisoformat(str(go_live)) if go_live else None
        source = "policy" if go_live else None
        if go_live is None:
            lives = [c for c in changes if c["system"] == sid and c["type"] == "initial_go_live"
                     and c["outcome"] in ("completed", "break_glass", "ungated") and c["day"]]
            if lives:
                go_live, source = lives[0]["day"], f"register ({lives[0]['change_id']})"
        deadline = go_live + _dt.timedelta(days=MLPS_FILING_DAYS) if go_live else None
        filed = sorted((f for f in filings if f.get("system") == sid), key=lambda f: str(f.get("filed_on")))
        filing = filed[0] if filed else None
        if go_live is None:
            status, css = "not live yet", "muted"
        elif filing:
            on = _dt.date.fromisoformat(str(filing["filed_on"]))
            status, css = ("filed late", "late") if on > deadline else ("filed", "ok")
        elif today > deadline:
            status, css = f"OVERDUE by {(today - deadline).days} day(s)", "overdue"
        else:
            status, css = f"due in {(deadline - today).days} day(s)", "due"
        rows.append({"system": sid, "name": system.get("name"), "level": level, "go_live": go_live, "go_live_source": source,
                     "deadline": deadline, "filing": filing, "status": status, "css": css,
                     "overdue": css == "overdue"})
    return rows


# ---- register health and calendar data ----------------------------------------------------------

def register_health(store, verify_report, witnesses, journals, changes):
    last = store.last_checkpoint_row() if store is not None else None
    cp = json.loads(last[3]) if last else None
    return {
        "verified": bool(verify_report and verify_report.get("ok")),
        "verify": verify_report,
        "last_checkpoint": {"seq": last[0], "ts": cp.get("ts"), "count": cp.get("count"), "key_id": cp.get("key_id"),
                            "root": cp.get("root")} if cp else None,
        "witnesses": witnesses,
        "journals": journals,
        "retrospective": [c for c in changes if _waits_for_retrospective(c)],
    }


def _waits_for_retrospective(change):
    """Break-glass until its retrospective approval closes it (register.audit), and every ungated change."""
    status = str(((change.get("form") or {}).get("gate") or {}).get("status") or "")
    if status.startswith("BREAK-GLASS"):
        return "closed" not in status.lower()
    return change["outcome"] in ("break_glass", "ungated")


def calendar_status(cal, today, warning_days=60):
    last = cal.last_covered_date(today)
    left = (last - today).days if last else None
    return {"last_covered": last, "days_left": left, "years": list(cal.available_years()),
            "warning": left is not None and left <= warning_days, "warning_days": warning_days}


# Articles no code can check: the report shows per system whether signed evidence exists.
EVIDENCE_CHECKLIST = [
    ("11", "go-live path from application to production run followed, IT PM and IT ops named"),
    ("13-15", "vendor handover: documents, training, monitoring means, maintenance tools, backup plan, "
              "emergency contacts, at least one named maintainer"),
    ("21", "system software (OS, database, middleware, monitoring) managed by IT ops"),
    ("29-30", "the platforms' security mechanisms used for backup, protection and services"),
]


def evidence_checklist(system, records):
    """[(article, requirement, latest signed evidence record or None)] for one system."""
    rows = []
    for article, requirement in EVIDENCE_CHECKLIST:
        found = sorted((r for r in records if r.get("kind") == "evidence" and r.get("system") == system
                        and str(r.get("article")) == article), key=lambda r: str(r.get("signed_at")))
        rows.append({"article": article, "requirement": requirement, "system": system,
                     "record": found[-1] if found else None})
    return rows
