"""A small change register for the unit tests of its readers (the evidence bundle, the report, the
`prodgate register/audit/report` commands): runs written through the register's own writer with the
callback's entry builders (register/record.py), as the callback writes them, and a signed checkpoint
after each run. Approvals and the policy come from tests/approval_world.py's ``World``.

Not a test module (no ``test_`` prefix): test_mirror.py does not count it.
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import SYSTEMS, World  # noqa: E402  pylint: disable=wrong-import-position,unused-import

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.record import build_intent, build_outcome  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import RegisterWriter  # noqa: E402

CST = timezone(timedelta(hours=8))


def ts(day, hhmm="10:00", minutes=0):
    """A register time stamp (UTC) of ``day`` ``hhmm`` in China Standard Time."""
    local = datetime.fromisoformat(f"{day}T{hhmm}:00").replace(tzinfo=CST) + timedelta(minutes=minutes)
    return local.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def consumed(envelopes):
    """What the gate records of the approvals it consumed (stage, role, person, nonce, key id)."""
    out = []
    for env in envelopes:
        pred = json.loads(dsse.parse_envelope(env)[1])["predicate"]
        out.append({"stage": pred["stage"], "role": pred["role"], "person": pred["person"],
                    "issued_at": pred["issued_at"], "nonce": pred["nonce"], "key_id": env["signatures"][0]["keyid"]})
    return out


class Register:
    """A SQLite register, its signing key, anchor and journal folder under ``root``."""

    def __init__(self, root):
        self.root = Path(root)
        self.db = str(self.root / "register.db")
        self.key = str(self.root / "keys" / "signing.key")
        self.pub = self.key + ".pub"
        self.anchor = str(self.root / "anchor-{register_id}.json")
        self.journal = str(self.root / "journal")
        self._n = 0

    def writer(self):
        return RegisterWriter(url=self.db, signing_key=self.key, anchor=self.anchor, journal_dir=self.journal)

    def environ(self, monkeypatch, home):
        """Point the command at this register only: no controller settings, HOME in ``home``."""
        for name in list(os.environ):
            if name.startswith("PRODGATE_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("PRODGATE_CONTROLLER_CONFIG", str(self.root / "no-controller.yml"))
        monkeypatch.setenv("PRODGATE_REGISTER_DB", self.db)
        monkeypatch.setenv("PRODGATE_REGISTER_SIGNING_KEY", self.key)
        monkeypatch.setenv("PRODGATE_REGISTER_ANCHOR", self.anchor)
        monkeypatch.setenv("PRODGATE_REGISTER_JOURNAL_DIR", self.journal)

    def run(self, change, day, steps, check_mode=False, checkpoint=True, close=True, at="10:00"):
        """One run of ``change``: ``steps`` is [(host, task dict, status, result)], one minute apart from ``at`` CST."""
        self._n += 1
        run_id = f"run-{self._n:03d}-{change['id']}"
        w = self.writer()
        w.preflight({"kind": "run_open", "run": run_id, "ts": ts(day, at), "playbook": change.get("playbook", "upgrade.yml"),
                     "controller": "ctl1", "user": "ivan", "check_mode": check_mode, "diff_mode": True,
                     "change": {k: v for k, v in change.items() if k != "playbook"}})
        failed = set()
        for i, (host, task, status, result) in enumerate(steps):
            task = dict(task, uuid=f"{run_id}-t{i}", check_mode=check_mode)
            w.append([build_intent(run_id, host, task, ts(day, at, minutes=i))])
            if task["module"] == "prodgate.deploy.approval_gate":
                decision = {k: result[k] for k in ("change_id", "required_stages", "performed_stage", "approvals",
                                                   "implementers", "supervisor")}
                w.append([dict(decision, kind="gate_decision", ts=ts(day, at, minutes=i), job_id=None)])
            w.append([build_outcome(run_id, host, task, status, result, ts(day, at, minutes=i), duration_ms=1200)])
            if status == "failed":
                failed.add(host)
        if close:
            w.append([{"kind": "run_close", "run": run_id, "ts": ts(day, at, minutes=len(steps) + 1), "stats": {},
                       "failed_hosts": sorted(failed)}])
        if checkpoint:
            assert w.checkpoint() and w.broken is None, w.broken
        w.close()
        return run_id


def change(change_id, system="ta-core", change_type="version_update", version="1.1.0", **extra):
    return dict({"id": change_id, "type": change_type, "system": system, "environment": "production",
                 "version": version}, **extra)


def gate(change_id, envelopes, stage="all", is_consumed=True, pending=()):
    return ("localhost", {"name": "Approval gate", "module": "prodgate.deploy.approval_gate"}, "ok",
            {"changed": False, "approvals": consumed(envelopes), "change_id": change_id, "consumed": is_consumed,
             "performed_stage": stage, "required_stages": ["plan_submission", "change_approval", "go_live"],
             "pending_stages": [{"stage": s} for s in pending], "implementers": ["ivan", "jane"], "supervisor": "sam"})


def window(day):
    return ("localhost", {"name": "Change window", "module": "prodgate.deploy.change_window"}, "ok",
            {"changed": False, "allowed": True, "override_used": False,
             "window": {"at": f"{day}T10:00:00+08:00", "open": True, "reason": "no window applies"}})


def install(host, version, before, tags=()):
    return (host, {"name": "Install the release", "module": "ansible.builtin.copy", "tags": list(tags)}, "ok",
            {"changed": True, "invocation": {"module_args": {"dest": "/opt/app/VERSION", "content": version}},
             "diff": [{"before": before, "after": version + "\n", "before_header": "/opt/app/VERSION",
                       "after_header": "/opt/app/VERSION"}]})


def health_check_fails(host):
    return (host, {"name": "Health check", "module": "ansible.builtin.uri"}, "failed",
            {"changed": False, "msg": "Status code was 500 and not [200]"})


FREEZES = [
    {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session", "categories": ["core_business"]},
    {"name": "year-end-close", "kind": "deny", "calendar": "year_end_close", "categories": ["core_business"],
     "exclude": {"change_types": ["routine"]}},
]


class MonthOfChanges:  # pylint: disable=too-few-public-methods
    """The report's facts: a signed policy with the trading-session and year-end freezes, ta-core graded
    MLPS level 3 and crm level 2, and a register with

    * CHG-GL: the initial go-live of ta-core on 2025-11-03 (never filed: its MLPS filing is overdue);
    * CHG-UP110: an upgrade completed through the gate on 2025-12-15;
    * CHG-UP120: the upgrade of 2025-12-16 whose health check failed and that rolled back;
    * CHG-ADHOC: a routine change of the wiki on 2025-12-18 without any gate (ungated);

    and, in the evidence folder, the approvals and a signed plan submission of CHG-PLAN for 2025-12-22 20:00.
    """

    def __init__(self, root):
        root = Path(root)
        systems = [dict(s) for s in SYSTEMS]
        systems[0]["mlps_level"] = 3
        systems[1]["mlps_level"] = 2
        self.world = w = World(root / "world", overrides={"freeze_windows": FREEZES, "systems": systems})
        self.reg = reg = Register(root / "reg")
        ev_gl = w.evidence(binding=w.binding(change_id="CHG-GL", change_type="initial_go_live", version="1.0.0"))
        reg.run(change("CHG-GL", change_type="initial_go_live", version="1.0.0"), "2025-11-03",
                [gate("CHG-GL", ev_gl), window("2025-11-03"), install("app1", "1.0.0", "")])
        ev1 = w.evidence(binding=w.binding(change_id="CHG-UP110", version="1.1.0"))
        reg.run(change("CHG-UP110", version="1.1.0"), "2025-12-15",
                [gate("CHG-UP110", ev1), window("2025-12-15"), install("app1", "1.1.0", "1.0.0\n")])
        ev2 = w.evidence(binding=w.binding(change_id="CHG-UP120", version="1.2.0"))
        reg.run(change("CHG-UP120", version="1.2.0"), "2025-12-16",
                [gate("CHG-UP120", ev2), install("app1", "1.2.0", "1.1.0\n"), health_check_fails("app1"),
                 install("app1", "1.1.0", "1.2.0\n", tags=["prodgate_rollback"])])
        reg.run(change("CHG-ADHOC", system="wiki", change_type="routine", version=None), "2025-12-18",
                [("wiki1", {"name": "Restart wiki", "module": "ansible.builtin.service"}, "ok", {"changed": True})])
        self.plan = w.approve("plan_submission", "it_head", "henry", w.binding(change_id="CHG-PLAN", version="1.4.0"),
                              planned_start=datetime(2025, 12, 22, 20, 0, tzinfo=CST))
        self.evidence = str(root / "evidence")
        w.write_evidence(ev_gl + ev1 + ev2, name=str(root / "evidence" / "changes"))
        w.write_evidence([self.plan], name=str(root / "evidence" / "plans"))
