# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin prodgate.deploy.approval_gate: a thin adapter over the governance core.

All rules live in plugins/plugin_utils (trust.py; governance/change.py, approvals.py, gate.py, policy.py;
register/ledger.py);
this file only collects the run's facts (options, run variables, play hosts) and reports the
decision. The policy, its governance root and the register (the single-use ledger) come from the
controller's trust settings, never from the run. Documentation: plugins/modules/approval_gate.py.
"""
from __future__ import annotations

import os
import time

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import break_glass as bg
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import calendar_pack
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.approvals import load_evidence
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.gate import ALL_STAGES, RUN_STAGES, GateRefused, run_gate
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.change import TARGETS_VARIABLE, require
from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import launcher_identity
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import utcnow
from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import open_trusted, pop_refused, rehearsal, task_change

ARGUMENT_SPEC = {
    "evidence": {"type": "path"},
    "change_id": {"type": "str"},
    "change_type": {"type": "str"},
    "system": {"type": "str"},
    "environment": {"type": "str"},
    "version": {"type": "str"},
    "artifacts": {"type": "list", "elements": "str"},
    "targets": {"type": "list", "elements": "str"},
    "plan": {"type": "str"},
    "implementers": {"type": "list", "elements": "str"},
    "supervisor": {"type": "str"},
    "emergency": {"type": "bool", "default": False},
    "break_glass": {"type": "bool", "default": False},
    "stage": {"type": "str", "choices": list(RUN_STAGES), "default": ALL_STAGES},
}
# Former options that chose trust settings: refused with where the setting belongs.
REFUSED_OPTIONS = ("policy", "policy_root", "ledger")


class ActionModule(ActionBase):
    # The decision is about the whole change, so it must run once, on the controller. Not
    # BYPASS_HOST_LOOP: a failed bypass task fails only the first host and the others would go
    # on (fail open); a failed run_once task fails every host of the play.
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        del tmp
        refused = pop_refused(self._task.args, REFUSED_OPTIONS)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if not self._task.run_once:
            raise AnsibleActionFail("approval_gate must run with `run_once: true`: the decision covers every host of the play, "
                                    "and a refused run_once task stops all of them")
        started = time.perf_counter()
        trusted = None
        change_id = None
        try:
            change, run_vars = task_change(dict(args, plan_digest=args.get("plan")), task_vars, self._templar.template, refused)
            change_id = change.change_id
            require(change, "approval_gate", ("evidence", "change_id", "change_type", "system", "environment"))
            check = rehearsal(self._task.check_mode, context.CLIARGS.get("check", False))
            trusted = open_trusted(run_vars, refused, environment=change.environment)
            if trusted.policy.is_production(change.environment):
                self._require_covered(change, run_vars)
            launcher, launcher_source = launcher_identity(trusted.settings, run_vars)
            envelopes = load_evidence(change.evidence)
            job_id = run_vars.get("awx_job_id")
            job_id = None if job_id is None else str(job_id)
            record = {"rehearsal": check, "launcher_source": launcher_source, "controller_pid": os.getpid()}
            if args["break_glass"]:
                decision = self._break_glass(trusted, change, launcher, envelopes, check, job_id, record)
            else:
                decision = run_gate(trusted.policy, envelopes, change.binding(launcher), trusted.ledger, consume=not check,
                                    job_id=job_id, stage=args["stage"], record=record)
        except GateRefused as exc:
            report = exc.report
            raise AnsibleActionFail(str(exc), result={"problems": exc.problems, "change_id": change_id,
                                                      "required_stages": report.required_stages if report else [],
                                                      "performed_stage": report.performed_stage if report else None})
        except ProdgateError as exc:
            raise AnsibleActionFail(f"approval gate refused the change: {exc}", result={"problems": [str(exc)], "change_id": change_id})
        finally:
            if trusted is not None:
                trusted.close()
        result.update(decision)
        result["decision_ms"] = round((time.perf_counter() - started) * 1000, 2)
        result["changed"] = decision["consumed"]
        result["rehearsal"] = check
        if trusted.warnings:
            result["warnings"] = list(trusted.warnings)
        # Issue 14: warn before the calendar data runs out (change_window would then refuse).
        calendar_warning = calendar_pack.policy_warning(trusted.policy.raw, trusted.policy.path, utcnow(), trusted.settings.policy_root)
        if calendar_warning:
            result["warnings"] = result.get("warnings", []) + [calendar_warning]
        if decision.get("break_glass"):
            result["msg"] = (f"BREAK-GLASS: change {decision['change_id']} passed on the acknowledgements of implementer(s) "
                             f"{', '.join(decision['implementers'])} and supervisor {decision['supervisor']}; it stays OPEN "
                             f"until {', '.join(decision['retrospective_roles'])} sign a retrospective approval, due "
                             f"{decision['retrospective_due']}" + ("" if decision["consumed"] else " (rehearsal: nothing consumed)"))
            return result
        team = f"implementers {', '.join(decision['implementers'])}, supervisor {decision['supervisor']}"
        if decision["pending_stages"]:
            after = ", then ".join(f"{p['stage']} ({', '.join(p['roles'])})" for p in decision["pending_stages"])
            result["msg"] = (f"change {decision['change_id']} approved for the {decision['performed_stage']} stage: signed "
                             f"{', '.join(decision['checked_stages'])} ({len(decision['approvals'])} approvals, not consumed); "
                             f"to sign after it: {after}; {team}")
        else:
            result["msg"] = (f"change {decision['change_id']} approved: {len(decision['approvals'])} approvals over "
                             f"{', '.join(decision['required_stages'])}; {team}"
                             + ("" if decision["consumed"] else " (rehearsal with --check: approvals not consumed)"))
        return result

    @staticmethod
    def _break_glass(trusted, change, launcher, envelopes, check, job_id, record):  # pylint: disable=too-many-arguments
        """Break-glass mode (rules in plugin_utils/governance/break_glass.py): the on-site supervisor's and an implementer's
        signed acknowledgements only; recorded as BREAK-GLASS and open until the retrospective approval."""
        if change.emergency:
            raise ProdgateError("approval_gate: emergency and break_glass are two modes; set one")
        policy = trusted.policy
        rule = bg.rule_of(policy)
        binding = change.binding(launcher)
        report = bg.verify_break_glass(policy, envelopes, binding, ledger=trusted.ledger)
        if not report.ok:
            raise GateRefused(report.problems)
        decision = bg.decision(policy, report, binding, rule, started_at=utcnow(), consume=not check,
                               calendar=calendar_pack.calendar_for_policy(policy.raw, policy.path, trusted.settings.policy_root))
        entry = dict(decision, system=change.system, environment=change.environment, change_type=change.change_type,
                     version=change.version, targets=list(change.targets), **record)
        if decision["consumed"]:
            trusted.ledger.consume([a.nonce for a in report.counted], change.change_id, job_id=job_id, decision=entry)
        else:
            trusted.ledger.record_decision(entry, job_id=job_id)
        return decision

    @staticmethod
    def _require_covered(change, run_vars):
        """The approvals must cover every host of the play: a ``targets`` option cannot narrow the change."""
        play_hosts = set(run_vars.get(TARGETS_VARIABLE) or [])
        missing = sorted(play_hosts - set(change.targets))
        if missing:
            raise ProdgateError(f"the targets option leaves out host(s) of this play: {', '.join(missing[:10])}; the gate decides "
                                "for every host the play changes, so the approvals must cover them all (remove `targets`)")
