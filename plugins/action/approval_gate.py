# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin prodgate.deploy.approval_gate: a thin adapter over the governance core.

All rules live in plugins/plugin_utils (approvals.py, policy.py, ledger.py); this file only
collects the run's facts (variables, play hosts, launching user) and reports the decision.
Documentation: plugins/modules/approval_gate.py.
"""
from __future__ import annotations

import getpass
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.prodgate.deploy.plugins.plugin_utils.approvals import ALL_STAGES, RUN_STAGES, GateRefused, load_evidence, run_gate
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.ledger import Ledger
from ansible_collections.prodgate.deploy.plugins.plugin_utils.policy import load_policy

ARGUMENT_SPEC = {
    "policy": {"type": "path"},
    "policy_root": {"type": "path"},
    "evidence": {"type": "path"},
    "change_id": {"type": "str"},
    "change_type": {"type": "str", "choices": ["initial_go_live", "version_update", "routine", "non_routine", "maintenance", "environment"]},
    "system": {"type": "str"},
    "environment": {"type": "str"},
    "version": {"type": "str"},
    "artifacts": {"type": "list", "elements": "str"},
    "targets": {"type": "list", "elements": "str"},
    "plan": {"type": "str"},
    "implementers": {"type": "list", "elements": "str"},
    "supervisor": {"type": "str"},
    "emergency": {"type": "bool", "default": False},
    "ledger": {"type": "path"},
    "stage": {"type": "str", "choices": list(RUN_STAGES), "default": ALL_STAGES},
}

# option -> run-wide variable used when the option is not given
RUN_VARIABLES = {
    "policy": "prodgate_policy",
    "policy_root": "prodgate_policy_root",
    "evidence": "prodgate_evidence",
    "change_id": "prodgate_change_id",
    "change_type": "prodgate_change_type",
    "system": "prodgate_system",
    "environment": "prodgate_environment",
    "version": "prodgate_version",
    "artifacts": "prodgate_artifacts",
    "implementers": "prodgate_implementers",
    "supervisor": "prodgate_supervisor",
    "plan": "prodgate_plan",
    "ledger": "prodgate_ledger",
}


class ActionModule(ActionBase):
    # The decision is about the whole change, so it must run once, on the controller. Not
    # BYPASS_HOST_LOOP: a failed bypass task fails only the first host and the others would go
    # on (fail open); a failed run_once task fails every host of the play.
    TRANSFERS_FILES = False
    _requires_connection = False

    def _run_value(self, args, option, task_vars):
        value = args.get(option)
        if value is None and option in RUN_VARIABLES:
            value = task_vars.get(RUN_VARIABLES[option])
            if value is not None:
                value = self._templar.template(value)
        return value

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if not self._task.run_once:
            raise AnsibleActionFail("approval_gate must run with `run_once: true`: the decision covers every host of the play, "
                                    "and a refused run_once task stops all of them")
        values = {name: self._run_value(args, name, task_vars) for name in ARGUMENT_SPEC}
        for name in ("policy", "evidence", "change_id", "change_type", "system", "environment"):
            if not values[name]:
                raise AnsibleActionFail(f"approval_gate needs {name}: set the option or the run variable {RUN_VARIABLES[name]}")
        targets = values["targets"]
        if targets is None:
            # A magic variable that is always a plain list of host names: read it without templating,
            # which would render 1,000 hosts one by one (about 0.1 ms each, bench/gate_bench.py).
            targets = list(task_vars.get("ansible_play_hosts_all") or [])
        artifacts = values["artifacts"] or []
        if isinstance(artifacts, str):
            artifacts = [artifacts]
        implementers = values["implementers"] or []
        if isinstance(implementers, str):
            implementers = [implementers]
        # Art. 27: the launching user must be one of the implementers; AWX passes awx_user_name.
        launcher = self._templar.template(task_vars.get("awx_user_name")) or getpass.getuser()
        binding = {
            "change_id": str(values["change_id"]), "system": values["system"], "environment": values["environment"],
            "change_type": values["change_type"], "version": None if values["version"] is None else str(values["version"]),
            "artifacts": [str(a) for a in artifacts], "targets": [str(t) for t in targets],
            "plan_digest": values["plan"], "implementers": [str(i) for i in implementers],
            "supervisor": values["supervisor"], "launcher": str(launcher), "emergency": bool(values["emergency"]),
        }
        job_id = task_vars.get("awx_job_id")
        started = time.perf_counter()
        try:
            policy = load_policy(values["policy"], root=values["policy_root"])
            envelopes = load_evidence(values["evidence"])
            with Ledger(values["ledger"]) as ledger:
                decision = run_gate(policy, envelopes, binding, ledger, consume=not self._task.check_mode,
                                    job_id=None if job_id is None else str(job_id), stage=values["stage"])
        except GateRefused as exc:
            report = exc.report
            raise AnsibleActionFail(str(exc), result={"problems": exc.problems, "change_id": binding["change_id"],
                                                      "required_stages": report.required_stages if report else [],
                                                      "performed_stage": report.performed_stage if report else None})
        except ProdgateError as exc:
            raise AnsibleActionFail(f"approval gate refused the change: {exc}", result={"problems": [str(exc)], "change_id": binding["change_id"]})
        result.update(decision)
        result["decision_ms"] = round((time.perf_counter() - started) * 1000, 2)
        result["changed"] = decision["consumed"]
        if not policy.pinned:
            result["warnings"] = ["policy governance keys are not pinned: set prodgate_policy_root to the governance root file"]
        team = f"implementers {', '.join(decision['implementers'])}, supervisor {decision['supervisor']}"
        if decision["pending_stages"]:
            after = ", then ".join(f"{p['stage']} ({', '.join(p['roles'])})" for p in decision["pending_stages"])
            result["msg"] = (f"change {decision['change_id']} approved for the {decision['performed_stage']} stage: signed "
                             f"{', '.join(decision['checked_stages'])} ({len(decision['approvals'])} approvals, not consumed); "
                             f"to sign after it: {after}; {team}")
        else:
            result["msg"] = (f"change {decision['change_id']} approved: {len(decision['approvals'])} approvals over "
                             f"{', '.join(decision['required_stages'])}; {team}"
                             + ("" if decision["consumed"] else " (check mode: approvals not consumed)"))
        return result
