"""The register's audit (issue 11, Deliver 6-7): production changes that did not go through the gate
(UNGATED) and break-glass changes waiting for their retrospective approval (open, OVERDUE, closed).

Computed in one streamed pass over the entries' hashed bodies (what ``verify`` vouches for):

* a run is UNGATED when it changed something for real (an outcome with ``changed`` true, not in
  check mode) in a production environment (the policy's, or any environment when it is unknown:
  fail closed) and the register holds no gate decision for its change written while the run was
  open (a ``gate_decision`` entry of the same change id, not a rehearsal);
* a break-glass change is the gate's ``gate_decision`` with ``break_glass: true``; it is closed by
  ``retrospective_approval`` entries (``prodgate register retrospective``) of every role the
  decision recorded, and OVERDUE once its recorded deadline passed with roles missing.
"""
import json
from datetime import datetime, timezone

from ..base import parse_time
from ..errors import ProdgateError
from ..governance import break_glass

UNGATED = "UNGATED"
RETROSPECTIVE_KIND = "retrospective_approval"


def _production(environment, policy=None):
    if policy is not None:
        return policy.is_production(environment)
    return environment in (None, "", "production", "prod")


def audit(entries, policy=None, now=None):
    """{"ungated": [...], "break_glass": [...]} from ``(seq, body)`` pairs (bodies as dicts or JSON text)."""
    now = now or datetime.now(timezone.utc)
    runs, gated, breaks, retro = {}, {}, {}, {}
    for seq, body in entries:
        if isinstance(body, str):
            body = json.loads(body)
        kind = body.get("kind")
        run_id = body.get("run")
        if kind == "run_open":
            runs[run_id] = {"run": run_id, "first_seq": seq, "ts": body.get("ts"), "change": body.get("change") or {},
                            "check_mode": bool(body.get("check_mode")), "playbook": body.get("playbook"),
                            "changed": 0, "first_change": None, "closed": None}
        elif kind == "run_change" and run_id in runs:
            runs[run_id]["change"] = body.get("change") or {}
        elif kind == "outcome" and run_id in runs:
            # per task: a `check_mode: false` task inside a --check run changes hosts for real
            if body.get("changed") and not body.get("check_mode") and body.get("status") == "ok":
                run = runs[run_id]  # a count and the first change: memory stays flat as the register grows
                run["changed"] += 1
                run["first_change"] = run["first_change"] or {"seq": seq, "host": body.get("host"), "task": body.get("task")}
        elif kind == "run_close" and run_id in runs:
            runs[run_id]["closed"] = seq
        elif kind == "gate_decision" and not body.get("rehearsal"):
            gated.setdefault(body.get("change_id"), []).append(seq)
            if body.get("break_glass"):
                breaks[body.get("change_id")] = dict(body, seq=seq)
        elif kind == RETROSPECTIVE_KIND:
            retro.setdefault(body.get("change_id"), []).append(body)
    ungated = []
    for run in sorted(runs.values(), key=lambda r: r["first_seq"]):
        change = run["change"]
        if not run["changed"] or not _production(change.get("environment"), policy):
            continue
        # gated: a decision for this change written while this run was open (an earlier run's decision,
        # or one after this run closed, does not cover it)
        closed = run["closed"] or float("inf")
        if any(run["first_seq"] < seq < closed for seq in gated.get(change.get("id"), [])):
            continue
        ungated.append({"status": UNGATED, "run": run["run"], "change_id": change.get("id"), "ts": run["ts"],
                        "environment": change.get("environment"), "playbook": run["playbook"],
                        "changed_tasks": run["changed"], "first_change": run["first_change"]})
    return {"ungated": ungated, "break_glass": [_break_glass_finding(d, retro.get(cid, []), now, policy)
                                                for cid, d in sorted(breaks.items(), key=lambda kv: kv[1]["seq"])]}


def _verified_retrospective(decision, entries, policy):
    """The retrospective approvals of ``entries`` whose signed envelopes verify against ``policy`` (an
    entry's own list of approvals is not evidence: anyone who can write to the register could add one)."""
    fields = ("change_id", "system", "environment", "change_type", "version", "targets", "implementers", "supervisor")
    change = dict({k: decision.get(k) for k in fields}, artifacts=[], started_at=decision["ts"])
    verified = []
    for entry in entries:
        try:
            report = break_glass.verify_retrospective(policy, entry.get("envelopes") or [], change,
                                                      now=parse_time(entry["ts"], "ts"))
        except (ProdgateError, KeyError, TypeError, ValueError):
            continue
        verified.extend({"role": a.role, "person": a.person, "issued_at": a.issued_at.isoformat()} for a in report.approvals)
    return verified


def _break_glass_finding(decision, entries, now, policy=None):
    due = parse_time(decision["retrospective_due"], "retrospective_due")
    roles = list(decision.get("retrospective_roles") or [])
    approvals = _verified_retrospective(decision, entries, policy) if policy is not None else []
    signed = {}
    for approval in approvals:
        if approval.get("role") in roles and approval["role"] not in signed:
            signed[approval["role"]] = approval
    missing = [r for r in roles if r not in signed]
    closed_at = None
    if missing:
        status = "OVERDUE" if now >= due else "open"
    else:
        status = "closed"
        closed_at = max(parse_time(a["issued_at"], "issued_at") for a in signed.values()).isoformat()
    if policy is None and entries and missing:
        status = f"{status} (retrospective approvals recorded, not verified: audit on a controller with the policy)"
    return {"change_id": decision.get("change_id"), "break_glass": True, "status": status, "due": due.isoformat(),
            "started_at": decision.get("ts"), "implementers": decision.get("implementers"),
            "supervisor": decision.get("supervisor"), "missing_roles": missing,
            "signed": {r: a.get("person") for r, a in signed.items()}, "closed_at": closed_at,
            "late": bool(closed_at and parse_time(closed_at, "closed_at") > due)}


def break_glass_decision(entries, change_id):
    """The recorded break-glass decision of ``change_id`` (a dict), or None."""
    found = None
    for _seq, body in entries:
        if isinstance(body, str):
            body = json.loads(body)
        if body.get("kind") == "gate_decision" and body.get("break_glass") and not body.get("rehearsal") \
                and body.get("change_id") == change_id:
            found = body
    return found


def retrospective_entry(decision, report, envelopes):
    """The register entry that records a verified retrospective approval of a break-glass change."""
    return {"kind": RETROSPECTIVE_KIND, "change_id": decision["change_id"],
            "ts": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "approvals": [{"role": a.role, "person": a.person, "issued_at": a.issued_at.isoformat(), "nonce": a.nonce,
                           "key_id": a.key_id} for a in report.approvals],
            # the signed envelopes themselves: the audit verifies them, never the list above
            "envelopes": [{k: v for k, v in e.items() if not k.startswith("_")} for e in envelopes
                          if e.get("_source") in {a.source for a in report.approvals}],
            "missing_roles": list(report.missing_roles)}


def gate_status(entries, change_id, policy=None, now=None):
    """How a change went through the gate, for its form: UNGATED, BREAK-GLASS (open, OVERDUE or
    closed), gated, or rehearsal only / not run."""
    found = audit(entries, policy=policy, now=now)
    ungated = [u for u in found["ungated"] if u["change_id"] == change_id]
    if ungated:
        return {"status": UNGATED, "runs": [u["run"] for u in ungated],
                "text": f"UNGATED: {len(ungated)} production run(s) changed hosts without a gate decision"}
    glass = [f for f in found["break_glass"] if f["change_id"] == change_id]
    if glass:
        f = glass[-1]
        if f["missing_roles"]:
            state = f"open until {', '.join(f['missing_roles'])} sign a retrospective approval; due {f['due']}"
        else:
            state = f"closed by the retrospective approval at {f['closed_at']}"
        text = f"BREAK-GLASS, {f['status']}: {state}"
        return dict(f, status=f"BREAK-GLASS {f['status']}", text=text)
    return {"status": "gated", "text": "passed the approval gate"}
