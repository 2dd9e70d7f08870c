"""`prodgate register audit` and `prodgate register retrospective` (issue 11, Deliver 6-7).

audit: production runs that changed something without a gate decision (UNGATED) and break-glass
changes waiting for their retrospective approval (open, OVERDUE, closed); exit 1 when anything is
UNGATED or OVERDUE. retrospective: verify the retrospective approvals of a break-glass change
against the controller's policy and append them to the register.
"""
import os

from ..governance import approvals, break_glass
from ..controller import load_settings
from ..errors import ProdgateError, RegisterError
from ..register.audit import audit, break_glass_decision, retrospective_entry
from ..register.record import plain
from ..base import canonical_json
from ..register.store import open_store, redact_url, wrap_db_errors
from ..trust import load_trusted_policy
from ._common import EXIT_FAILED, EXIT_OK, emit, table_text, track


def _store(args):
    url = args.db or os.environ.get("PRODGATE_REGISTER_DB")
    store = wrap_db_errors(open_store)(url)
    if store.schema_version() == 0:
        store.close()
        raise RegisterError(f"no register at {redact_url(store.url)}: give --db, the register's SQLite path or "
                            "postgresql:// URL")
    return store


def controller_policy():
    """The controller's policy when this machine has trust settings (production environments, break-glass rule)."""
    try:
        settings = load_settings()
    except ProdgateError:
        return None
    return load_trusted_policy(settings)[0] if settings.policy else None


def cmd_audit(args):
    policy = controller_policy()
    with _store(args) as store:
        found = audit(track(((seq, body) for seq, body in store.bodies()), "auditing the register"), policy=policy)
    bad = bool(found["ungated"]) or any(f["status"] == "OVERDUE" for f in found["break_glass"])

    def text():
        lines = []
        rows = [{"finding": u["status"], "change": u["change_id"] or "-", "environment": u["environment"] or "-",
                 "when": u["ts"], "run": u["run"][:12], "changed": u["changed_tasks"],
                 "detail": f"first change: {u['first_change']['host']}: {u['first_change']['task']}"} for u in found["ungated"]]
        rows += [{"finding": f"BREAK-GLASS {f['status']}", "change": f["change_id"], "environment": "-",
                  "when": f["started_at"], "run": "-", "changed": "-",
                  "detail": f"due {f['due']}" + (f"; missing {', '.join(f['missing_roles'])}" if f["missing_roles"] else
                                                 f"; closed {f['closed_at']}" + (" (late)" if f["late"] else ""))}
                 for f in found["break_glass"]]
        if not rows:
            return "audit: no ungated production change, no break-glass change waiting"
        columns = [(h.upper(), h) for h in ("finding", "change", "environment", "when", "run", "changed", "detail")]
        lines.append(table_text(columns, rows))
        if found["ungated"]:
            lines.append(f"{len(found['ungated'])} production run(s) changed hosts without a gate decision (UNGATED): "
                         "investigate each, and register it as a change")
        return "\n".join(lines)
    emit(args, found, text)
    return EXIT_FAILED if bad else EXIT_OK


def cmd_retrospective(args):
    settings = load_settings()
    with _store(args) as store:
        decision = break_glass_decision(store.bodies(), args.change)
        if decision is None:
            raise RegisterError(f"no break-glass decision of change {args.change} in the register {redact_url(store.url)}")
        policy = load_trusted_policy(settings, environment=decision.get("environment"))[0]
        fields = ("change_id", "system", "environment", "change_type", "version", "targets", "implementers", "supervisor")
        change = dict({k: decision.get(k) for k in fields}, artifacts=[], started_at=decision["ts"])
        envelopes = approvals.load_evidence(args.evidence)
        report = break_glass.verify_retrospective(policy, envelopes, change)
        if not report.approvals:
            raise ProdgateError("no retrospective approval counts: " + " | ".join(report.problems or ["none given"]))
        entry = retrospective_entry(decision, report, envelopes)
        wrap_db_errors(store.append)([canonical_json(plain(entry))])
    data = dict(entry, problems=report.problems, complete=report.complete)
    emit(args, data, lambda: (f"retrospective approval of {args.change} recorded: "
                              + ", ".join(f"{a['role']} by {a['person']}" for a in entry["approvals"])
                              + ("; the change is closed" if report.complete else
                                 f"; still missing: {', '.join(report.missing_roles)}")
                              + ("".join(f"\n  ignored: {p}" for p in report.problems))))
    return EXIT_OK


def add(sub, add_common):
    """Add the two commands to the `register` group (called by cli/register.py)."""
    p = sub.add_parser("audit", help="production runs without a gate decision (UNGATED) and break-glass changes waiting "
                                     "for their retrospective approval (exit 1 when any is UNGATED or OVERDUE)")
    add_common(p)
    p.set_defaults(handler=cmd_audit)
    p = sub.add_parser("retrospective", help="record the retrospective approval of a break-glass change")
    p.add_argument("change", help="the change id of the break-glass change")
    p.add_argument("--evidence", required=True, help="folder or file of retrospective_approval envelopes")
    add_common(p)
    p.set_defaults(handler=cmd_retrospective)
    return p
