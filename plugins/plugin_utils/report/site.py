"""Render the report into a folder of static HTML pages (no server, no network: CSS inline)."""
import datetime as _dt
import os

from ..errors import ProdgateError
from ..register.audit import gate_status
from . import model
from .form import _when

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def _env():
    try:
        import jinja2  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise ProdgateError("the report needs the Python package jinja2: pip install 'prodgate[controller]' "
                            "(or jinja2)") from exc
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    return env


def build_site(out_dir, policy, cal, view, tz, today, months, envelopes=(), records=(), record_problems=(),
               verify_report=None, witnesses=(), journals=(), store=None, built=None):
    """Write the pages; returns {page name: path} of what was written."""
    analyses = {r["change_id"]: r for r in records if r.get("kind") == "failure_analysis"}
    filings = [r for r in records if r.get("kind") == "mlps_filing"]

    def gate_of(change_id):
        return gate_status(store.bodies(), change_id, policy=policy)
    changes = model.executed_changes(view, tz, analyses, gate_of if store is not None else None) if view is not None else []
    planned = model.planned_changes(policy, envelopes, tz)
    systems = [{"id": s.get("id"), "name": s.get("name"), "slug": model.slug(s.get("id"))}
               for s in policy.raw.get("systems") or []]
    schedules, _settings = model.schedules_for(policy, cal, [s["id"] for s in systems])
    mlps = model.mlps_rows(policy, changes, filings, today)
    health = model.register_health(store, verify_report, list(witnesses), list(journals), changes)
    calstatus = model.calendar_status(cal, today, _settings.data_warning_days or 60)
    alerts = []
    for r in mlps:
        if r["overdue"]:
            alerts.append(f'MLPS filing of <a href="mlps.html">{r["system"]}</a> is {r["status"]} (went live '
                          f'{r["go_live"]}, due {r["deadline"]})')
    for c in changes:
        if c["needs_analysis"] and not c["analysis"]:
            alerts.append(f'Failure analysis of <a href="{c["page"]}">{c["change_id"]}</a> ({c["outcome_text"].lower()} '
                          f'on {c["day"]}) is open: the IT project manager has not signed one')
    if verify_report is not None and not verify_report.get("ok"):
        alerts.append('The change register did <a href="health.html">not verify</a>')
    if calstatus["warning"]:
        alerts.append(f'Calendar data ends {calstatus["last_covered"]}: <a href="health.html">add the next year</a>')
    common = {"systems": systems, "built": built or _dt.datetime.now(tz).strftime("%Y-%m-%d %H:%M %Z"),
              "policy_version": policy.version, "calstatus": calstatus}
    env = _env()
    os.makedirs(out_dir, exist_ok=True)
    written = {}

    def page(name, template, **data):
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(env.get_template(template).render(**common, **data))
        written[name] = path

    def grids(system_ids):
        subset = {s: schedules[s] for s in system_ids}
        chosen = [c for c in changes if c["day"] and (c["system"] in system_ids or len(system_ids) > 1)]
        plan = [p for p in planned if p["system"] in system_ids or len(system_ids) > 1]
        return [model.month_grid(y, m, cal, subset, chosen, plan, today) for y, m in months]

    page("index.html", "calendar.html.j2", title="Change calendar: all systems", scope="All systems",
         months=grids([s["id"] for s in systems]), alerts=alerts, checklist=None)
    for s in systems:
        page(f"system-{s['slug']}.html", "calendar.html.j2", title=f"Change calendar: {s['id']}",
             scope=f"{s['id']} ({s['name']})", months=grids([s["id"]]), alerts=[],
             checklist=model.evidence_checklist(s["id"], records))
    page("changes.html", "changes.html.j2", title="Changes", changes=changes, planned=planned)
    for c in changes:
        page(c["page"], "change.html.j2", title=f"Change {c['change_id']}", doc=c)
    page("health.html", "health.html.j2", title="Register health and calendar data", health=health,
         record_problems=list(record_problems))
    page("mlps.html", "mlps.html.j2", title="MLPS filings (Art. 20(7))", mlps=mlps)
    return written
