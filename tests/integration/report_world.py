"""A month of changes for the report tests, written through the register's core writer with the
callback's own entry builders (register_record), as the callback writes them during runs:

* CHG-GL: the initial go-live of ta-core (MLPS level 3) on 2025-11-03, never filed: overdue;
* CHG-UP110: an upgrade completed on 2025-12-15, its gate run twice (trial run, then all stages);
* CHG-UP120: the upgrade to 1.2.0 on 2025-12-16 whose health check failed and that rolled back;
* CHG-TRIAL: a trial run only on 2025-12-17; CHG-ADHOC: a change without any gate on 2025-12-18;
* a signed plan submission for CHG-PLAN on 2025-12-22.

The signed policy carries the trading-session and year-end freeze windows for core_business.
"""
import importlib.util
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

# tests/approval_world.py by path: tests/integration/lab_world.py (the lab's world) has the same
# module name, and whichever is imported first would shadow the other.
_SPEC = importlib.util.spec_from_file_location("prodgate_tests_approval_world",
                                               Path(__file__).resolve().parents[1] / "approval_world.py")
_WORLD = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_WORLD)
SYSTEMS, World = _WORLD.SYSTEMS, _WORLD.World

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.record import build_intent, build_outcome  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import RegisterWriter  # noqa: E402

CST = timezone(timedelta(hours=8))
TODAY = "2025-12-30"
FREEZES = [
    {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session", "categories": ["core_business"]},
    {"name": "year-end-close", "kind": "deny", "calendar": "year_end_close", "categories": ["core_business"],
     "exclude": {"change_types": ["routine"]}},
]


def _ts(day, hhmm, minutes=0):
    local = datetime.fromisoformat(f"{day}T{hhmm}:00").replace(tzinfo=CST) + timedelta(minutes=minutes)
    return local.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


class ReportWorld:
    def __init__(self, root):
        self.root = Path(root)
        systems = [dict(s) for s in SYSTEMS]
        systems[0]["mlps_level"] = 3   # ta-core: filed within 30 days of going live (Art. 20(7))
        systems[1]["mlps_level"] = 2   # crm: not live yet
        self.world = World(self.root / "world", overrides={"freeze_windows": FREEZES, "systems": systems})
        self.db = str(self.root / "register.db")
        self.key = str(self.root / "keys" / "signing.key")
        self.anchor = str(self.root / "anchor-{register_id}.json")
        self.evidence = self.root / "evidence"
        self.records = self.root / "records"
        self.records.mkdir(parents=True, exist_ok=True)
        self._n = 0

    def env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("PRODGATE_"):
                env.pop(k)
        env.update({"PRODGATE_REGISTER_DB": self.db, "PRODGATE_REGISTER_SIGNING_KEY": self.key,
                    "PRODGATE_REGISTER_ANCHOR": self.anchor, "PRODGATE_REGISTER_JOURNAL_DIR": str(self.root / "journal"),
                    "PRODGATE_CONTROLLER_CONFIG": str(self.root / "no-controller.yml")})
        return env

    def run(self, change, day, steps, check_mode=False):
        """One run: ``steps`` is [(host, task dict, status, result)]; entries timed from 10:00 CST."""
        self._n += 1
        run_id = f"run-{self._n:03d}-{change['id']}"
        w = RegisterWriter(url=self.db, signing_key=self.key, anchor=self.anchor, journal_dir=str(self.root / "journal"))
        w.preflight({"kind": "run_open", "run": run_id, "ts": _ts(day, "10:00"), "playbook": change.get("playbook"),
                     "controller": "ctl1", "user": "ivan", "check_mode": check_mode, "diff_mode": True,
                     "change": {k: v for k, v in change.items() if k != "playbook"}})
        failed = set()
        for i, (host, task, status, result) in enumerate(steps):
            task = dict(task, uuid=f"{run_id}-t{i}", check_mode=check_mode)
            w.append([build_intent(run_id, host, task, _ts(day, "10:00", i))])
            if task["module"] == "prodgate.deploy.approval_gate":
                # what the single-use ledger appends with the gate's decision (plugin_utils/register/ledger.py)
                decision = {k: result[k] for k in ("change_id", "required_stages", "performed_stage", "approvals",
                                                   "implementers", "supervisor")}
                w.append([dict(decision, kind="gate_decision", ts=_ts(day, "10:00", i), job_id=None)])
            w.append([build_outcome(run_id, host, task, status, result, _ts(day, "10:00", i), duration_ms=1200)])
            if status == "failed" and not task.get("ignore"):
                failed.add(host)
        w.append([{"kind": "run_close", "run": run_id, "ts": _ts(day, "10:00", len(steps) + 1), "stats": {},
                   "failed_hosts": sorted(failed)}])
        assert w.checkpoint() and w.broken is None, w.broken
        w.close()
        return run_id

    def gate(self, change_id, envelopes, stage="all", consumed=True, pending=()):
        from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse  # pylint: disable=import-outside-toplevel
        import json  # pylint: disable=import-outside-toplevel
        approvals = []
        for env in envelopes:
            pred = json.loads(dsse.parse_envelope(env)[1])["predicate"]
            approvals.append({"stage": pred["stage"], "role": pred["role"], "person": pred["person"],
                              "issued_at": pred["issued_at"], "nonce": pred["nonce"],
                              "key_id": env["signatures"][0]["keyid"]})
        return ("localhost", {"name": "Approval gate", "module": "prodgate.deploy.approval_gate"}, "ok",
                {"changed": False, "approvals": approvals, "change_id": change_id, "consumed": consumed,
                 "performed_stage": stage, "required_stages": ["plan_submission", "change_approval", "go_live"],
                 "pending_stages": [{"stage": s} for s in pending], "implementers": ["ivan", "jane"], "supervisor": "sam"})

    @staticmethod
    def window(day):
        return ("localhost", {"name": "Change window", "module": "prodgate.deploy.change_window"}, "ok",
                {"changed": False, "allowed": True, "open": True, "frozen": False, "override_used": False,
                 "evaluated_at": f"{day}T10:00:00+08:00",
                 "window": {"at": f"{day}T10:00:00+08:00", "open": True, "reason": "no window applies"}})

    @staticmethod
    def install(host, version, before, tags=()):
        return (host, {"name": "Install the release", "module": "ansible.builtin.copy", "tags": list(tags)}, "ok",
                {"changed": True, "invocation": {"module_args": {"dest": "/opt/app/VERSION", "content": version}},
                 "diff": [{"before": before, "after": version + "\n",
                           "before_header": "/opt/app/VERSION",
                           "after_header": "/root/.ansible/tmp/ansible-local-1234/tmpab12/VERSION"},
                          {"before": "", "after": "", "before_header": "/tmp/x", "after_header": "/tmp/y"}]})

    def build(self):
        w = self.world
        gl = {"id": "CHG-GL", "type": "initial_go_live", "system": "ta-core", "environment": "production",
              "version": "1.0.0", "playbook": "go_live.yml"}
        ev_gl = w.evidence(binding=w.binding(change_id="CHG-GL", change_type="initial_go_live", version="1.0.0"))
        self.run(gl, "2025-11-03", [self.gate("CHG-GL", ev_gl), self.window("2025-11-03"),
                                    self.install("app1", "1.0.0", ""), self.install("app2", "1.0.0", "")])
        up1 = {"id": "CHG-UP110", "type": "version_update", "system": "ta-core", "environment": "production",
               "version": "1.1.0", "playbook": "upgrade.yml", "implementers": ["ivan", "jane"], "supervisor": "sam"}
        ev1 = w.evidence(binding=w.binding(change_id="CHG-UP110", version="1.1.0"))
        self.run(up1, "2025-12-15", [self.gate("CHG-UP110", ev1, stage="trial_run", consumed=False, pending=["go_live"]),
                                     self.gate("CHG-UP110", ev1), self.window("2025-12-15"),
                                     self.install("app1", "1.1.0", "1.0.0\n"), self.install("app2", "1.1.0", "1.0.0\n")])
        up2 = {"id": "CHG-UP120", "type": "version_update", "system": "ta-core", "environment": "production",
               "version": "1.2.0", "playbook": "upgrade.yml"}
        ev2 = w.evidence(binding=w.binding(change_id="CHG-UP120", version="1.2.0"))
        self.run(up2, "2025-12-16", [
            self.gate("CHG-UP120", ev2), self.window("2025-12-16"), self.install("app1", "1.2.0", "1.1.0\n"),
            ("app1", {"name": "Health check", "module": "ansible.builtin.uri"}, "failed",
             {"changed": False, "msg": "Status code was 500 and not [200]"}),
            self.install("app1", "1.1.0", "1.2.0\n", tags=["prodgate_rollback"])])
        trial = {"id": "CHG-TRIAL", "type": "version_update", "system": "ta-core", "environment": "production",
                 "version": "1.3.0", "playbook": "go_live.yml"}
        ev3 = w.evidence(binding=w.binding(change_id="CHG-TRIAL", version="1.3.0"), without=("go_live",))
        self.run(trial, "2025-12-17", [self.gate("CHG-TRIAL", ev3, stage="trial_run", consumed=False,
                                                 pending=["go_live"]), self.install("app1", "1.3.0", "1.1.0\n")],
                 check_mode=True)
        adhoc = {"id": "CHG-ADHOC", "type": "routine", "system": "wiki", "environment": "production",
                 "playbook": "fix.yml"}
        self.run(adhoc, "2025-12-18", [("wiki1", {"name": "Restart wiki", "module": "ansible.builtin.service"}, "ok",
                                        {"changed": True})])
        plan_binding = w.binding(change_id="CHG-PLAN", version="1.4.0")
        plan = w.approve("plan_submission", "it_head", "henry", plan_binding,
                         planned_start=datetime(2025, 12, 22, 20, 0, tzinfo=CST))
        w.write_evidence(ev_gl + ev1 + ev2 + ev3 + [plan], name="../evidence/all")
        return self
