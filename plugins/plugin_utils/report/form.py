"""The Art. 27 production change registration form as a document a person signs off.

Built from :func:`register.query.change_form` (what the register holds for a change):
each fact once (requesters and approvals de-duplicated across gate runs), decisions in words,
diffs only where something changed, and never a controller's temporary path as a label.
Rendered as markdown (``prodgate register form``) and as HTML (the report's change page).
"""
import difflib
import json
import re

from ..base import read_stamp

OUTCOMES = {
    "completed": "Completed",
    "trial_run": "Trial run",
    "failed": "Failed",
    "rolled_back": "Rolled back",
    "break_glass": "Break-glass",
    "ungated": "Ungated",
    "in_progress": "Not closed",
}
_TEMP_PATH = re.compile(r"(/tmp/|/\.ansible/tmp|ansible-tmp-|ansible-local-|/var/tmp/)")


def _gate_runs(form):
    return [ev for ev in form.get("approvals") or [] if isinstance(ev, dict)]


def outcome(form):
    """One word for how the change went, in the order an auditor asks."""
    runs = form.get("runs") or []
    gates = _gate_runs(form)
    audit_status = str((form.get("gate") or {}).get("status") or "")  # register.audit.gate_status
    if audit_status.startswith("BREAK-GLASS"):
        return "break_glass"
    if audit_status == "UNGATED":
        return "ungated"
    if form.get("break_glass") or any(g.get("break_glass") for g in gates) or any(r.get("break_glass") for r in runs):
        return "break_glass"
    if form.get("rolled_back") or form.get("rollback"):
        return "rolled_back"
    states = [str(r.get("state") or "") for r in runs]
    if any(s.startswith("not closed") for s in states) and not any(s in ("failed",) or s.startswith("aborted") for s in states):
        return "in_progress" if states and states[-1].startswith("not closed") else "failed"
    if any(s == "failed" or s.startswith("aborted") for s in states):
        return "failed"
    if runs and all(r.get("check_mode") for r in runs):
        return "trial_run"
    if gates and all(g.get("performed_stage") == "trial_run" for g in gates):
        return "trial_run"
    changed = any(it.get("changed") for items in (form.get("per_host") or {}).values() for it in items)
    if not gates and changed and not audit_status:
        return "ungated"
    return "completed"


def _when(ts, tz=None):
    if not ts:
        return "unknown"
    moment = read_stamp(ts)
    if moment is None:
        return str(ts)
    if tz is not None:
        moment = moment.astimezone(tz)
    return moment.strftime("%Y-%m-%d %H:%M") + (" " + moment.strftime("%Z") if moment.strftime("%Z") else "")


def _unique(values):
    out = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return out


def approvals(form):
    """Each signed approval once (a gate run per stage repeats them), oldest first."""
    seen, out = set(), []
    for ev in _gate_runs(form):
        for a in ev.get("approvals") or []:
            key = a.get("nonce") or (a.get("stage"), a.get("role"), a.get("person"), a.get("issued_at"))
            if key in seen:
                continue
            seen.add(key)
            out.append({k: a.get(k) for k in ("stage", "role", "person", "issued_at", "key_id", "decision", "reason")})
    return sorted(out, key=lambda a: str(a.get("issued_at")))


def gate_sentences(form):
    out = []
    audit = form.get("gate") or {}
    if audit.get("text") and audit.get("status") != "gated":
        out.append(audit["text"][0].upper() + audit["text"][1:] + ("" if audit["text"].endswith(".") else "."))
    for ev in _gate_runs(form):
        stage = ev.get("performed_stage")
        pending = [p.get("stage") if isinstance(p, dict) else p for p in ev.get("pending_stages") or []]
        consumed = "the approvals were used up (single use)" if ev.get("consumed") else "no approval was used up"
        if stage and stage != "all" and pending:
            out.append(f"The approval gate passed up to the {stage.replace('_', ' ')} stage; {consumed}; still to be "
                       f"approved: {', '.join(s.replace('_', ' ') for s in pending)}.")
        else:
            stages = ", ".join(s.replace("_", " ") for s in ev.get("required_stages") or []) or "every required stage"
            out.append(f"The approval gate passed: {stages} approved; {consumed}.")
    return _unique(out)


def window_sentences(form):
    out = []
    for w in form.get("window") or []:
        win = w.get("window") or {}
        at = win.get("at") or w.get("evaluated_at")
        reason = win.get("reason") or ""
        if w.get("override_used"):
            who = ", ".join(a.get("person", "?") for a in (w.get("override") or {}).get("approvals") or []) \
                if isinstance(w.get("override"), dict) else ""
            out.append(f"The change window was frozen ({reason}) at {_when(at)}; an emergency override"
                       + (f" by {who}" if who else "") + " allowed the change.")
        elif w.get("allowed"):
            text = f"The change window was open at {_when(at)}"
            text += f" ({reason})." if reason and reason != "no window applies" else ": no freeze window applies."
            lead = w.get("lead_time") or {}
            if lead.get("ok"):
                text += (f" The plan was submitted on {lead.get('plan_submitted_on')}, at least "
                         f"{lead.get('required_working_days')} working days before the installation.")
            out.append(text)
        else:
            out.append(f"The change window refused the change at {_when(at)}: {win.get('message') or reason}.")
    return _unique(out)


def _label(header, fallback):
    if not header or _TEMP_PATH.search(str(header)):
        return fallback
    return str(header)


def clean_diffs(item):
    """Unified diffs of a task result, without empty ones and without temporary paths."""
    out = []
    dest = (item.get("args") or {}).get("dest") or (item.get("args") or {}).get("path") if isinstance(item.get("args"), dict) else None
    for d in item.get("diff") or []:
        if not isinstance(d, dict):
            continue
        before, after = d.get("before"), d.get("after")
        if before is None and after is None:
            if d.get("before_sha256") or d.get("after_sha256"):
                if d.get("before_sha256") != d.get("after_sha256"):
                    out.append({"label": _label(d.get("after_header"), dest or "content"),
                                "lines": [f"- sha256 {d.get('before_sha256')}", f"+ sha256 {d.get('after_sha256')}"]})
            elif d.get("prepared") and str(d["prepared"]).strip():
                out.append({"label": dest or "change", "lines": str(d["prepared"]).splitlines()})
            continue
        if not isinstance(before, str):
            before = "" if before is None else json.dumps(before, sort_keys=True, indent=1)
        if not isinstance(after, str):
            after = "" if after is None else json.dumps(after, sort_keys=True, indent=1)
        if before == after:
            continue
        label = _label(d.get("after_header") or d.get("before_header"), dest or "content")
        lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=2))[2:]
        if lines:
            out.append({"label": label, "lines": lines})
    return out


def document(form, analysis=None, tz=None):
    """The facts of the form, each once, in the order of the paper form. ``analysis``: the signed
    failure analysis record of the change (Art. 23-24), if any."""
    runs = form.get("runs") or []
    req = form.get("request") or {}
    result = outcome(form)
    hosts = []
    for host, items in sorted((form.get("per_host") or {}).items(), key=lambda kv: str(kv[0])):
        tasks = []
        for it in items:
            tasks.append({"seq": it.get("seq"), "task": it.get("task"), "module": it.get("module"),
                          "status": ("changed" if it.get("status") == "ok" and it.get("changed") else it.get("status")),
                          "censored": bool(it.get("censored")), "check_mode": bool(it.get("check_mode")),
                          "diffs": [] if it.get("censored") else clean_diffs(it), "msg": it.get("msg")})
        hosts.append({"host": host, "tasks": tasks})
    rolled = [{"host": r.get("host"), "to": r.get("to"), "seq": r.get("seq"), "task": r.get("task")}
              for r in form.get("rolled_back") or []]
    needs_analysis = result in ("failed", "rolled_back")
    return {
        "change_id": form.get("change_id"),
        "outcome": result,
        "outcome_text": OUTCOMES[result],
        "system": req.get("system"), "environment": req.get("environment"), "type": req.get("type"),
        "version": req.get("version"),
        "requested_by": _unique(req.get("requested_by") or []),
        "started": _when(runs[0].get("started"), tz) if runs else None,
        "ended": _when(runs[-1].get("ended"), tz) if runs and runs[-1].get("ended") else None,
        "approvals": approvals(form),
        "gate": gate_sentences(form),
        "window": window_sentences(form),
        "implementers": form.get("verified_implementers") or form.get("implementers") or [],
        "implementers_verified": bool(form.get("verified_implementers")),
        "supervisor": form.get("verified_supervisor") or form.get("supervisor"),
        "supervisor_verified": bool(form.get("verified_supervisor")),
        "runs": [{"run": r.get("run"), "started": _when(r.get("started"), tz), "ended": _when(r.get("ended"), tz)
                  if r.get("ended") else None, "state": r.get("state"), "playbook": r.get("playbook"),
                  "check_mode": r.get("check_mode"), "user": r.get("awx_user") or r.get("user")} for r in runs],
        "hosts": hosts,
        "rolled_back": rolled,
        "rollback_changes": [{"run": r.get("run"), "change_id": r.get("change_id"), "started": _when(r.get("started"), tz),
                              "state": r.get("state")} for r in form.get("rollback") or []],
        "needs_analysis": needs_analysis,
        "analysis": analysis,
    }


def to_markdown(doc):
    """The form as markdown: what ``prodgate register form`` prints."""
    out = [f"# Production change registration form: {doc['change_id']}", "",
           f"Art. 27 of the deployment policy. Outcome: **{doc['outcome_text']}**.", "", "## The change", ""]
    out.append(f"- System: {doc['system'] or 'not recorded'} ({doc['environment'] or 'environment not recorded'})")
    out.append(f"- Type: {(doc['type'] or 'not recorded').replace('_', ' ')}"
               + (f", version {doc['version']}" if doc.get("version") else ""))
    out.append(f"- Requested by: {', '.join(doc['requested_by']) or 'not recorded'}")
    out.append(f"- Carried out: {doc['started'] or 'not started'}" + (f" to {doc['ended']}" if doc.get("ended") else ""))
    out += ["", "## Approvals", ""]
    if doc["approvals"]:
        out += ["| Stage | Role | Person | Signed | Key |", "|---|---|---|---|---|"]
        out += [f"| {str(a['stage']).replace('_', ' ')} | {str(a['role']).replace('_', ' ')} | {a['person']} | "
                f"{_when(a['issued_at'])} | {str(a['key_id'] or '')[:16]} |" for a in doc["approvals"]]
    else:
        out.append("No approval was recorded by the approval gate.")
    out += ["", "## Decisions", ""]
    out += [f"- {s}" for s in doc["gate"] + doc["window"]] or ["- No gate or window decision was recorded."]
    out += ["", "## People", ""]
    out.append(f"- Implementers: {', '.join(doc['implementers']) or 'not recorded'}"
               + (" (acknowledged, verified by the approval gate)" if doc["implementers_verified"] else ""))
    out.append(f"- Supervisor on site: {doc['supervisor'] or 'not recorded'}"
               + (" (acknowledged, verified by the approval gate)" if doc["supervisor_verified"] else ""))
    out += ["", "## Runs", ""]
    out += [f"- {r['started']} to {r['ended'] or '(not closed)'}: {r['playbook'] or 'ad hoc'} by {r['user'] or '?'}: "
            f"{r['state']}" + (" (check mode)" if r.get("check_mode") else "") + f" [run {str(r['run'])[:12]}]"
            for r in doc["runs"]]
    out += ["", "## What changed, per host", ""]
    if not doc["hosts"]:
        out.append("Nothing changed on any host.")
    for h in doc["hosts"]:
        out.append(f"### {h['host']}")
        out.append("")
        for t in h["tasks"]:
            note = " (no_log: content withheld)" if t["censored"] else ""
            msg = f": {t['msg']}" if t.get("msg") else ""
            out.append(f"- {t['task']} ({t['module']}): {t['status']}{note}{msg} [entry {t['seq']}]")
            for d in t["diffs"]:
                out += ["", "  ```diff", f"  # {d['label']}"] + [f"  {line}" for line in d["lines"]] + ["  ```", ""]
        out.append("")
    out += ["## Rollback", ""]
    rb = [f"- {r['host']} was switched back to {r['to'] or 'the earlier release'} (entry {r['seq']})" for r in doc["rolled_back"]]
    rb += [f"- Rollback change {r['change_id'] or ''} run {str(r['run'])[:12]} on {r['started']}: {r['state']}"
           for r in doc["rollback_changes"]]
    out += rb or ["- None."]
    if doc["needs_analysis"] or doc.get("analysis"):
        out += ["", "## Failure analysis (Art. 23-24)", ""]
        a = doc.get("analysis")
        if a:
            out += [f"- Cause: {a['cause']}", f"- Action: {a['action']}", f"- Owner: {a['owner']}",
                    f"- Signed by {a['signer']} (IT project manager) on {_when(a.get('signed_at'))}, key {a['key_id'][:16]}"]
        else:
            out.append("- OPEN: no failure analysis signed by the IT project manager yet "
                       "(`prodgate report sign failure-analysis`).")
    return "\n".join(out) + "\n"
