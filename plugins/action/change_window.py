# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin prodgate.deploy.change_window: freeze windows, lead time, emergency override.

A thin adapter: it reads the signed policy and the evidence through the approvals code, and
leaves every decision to ``plugin_utils.freeze_window.evaluate_change``. Documentation is in
plugins/modules/change_window.py.
"""
from __future__ import annotations

import datetime

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.prodgate.deploy.plugins.plugin_utils import freeze_window
from ansible_collections.prodgate.deploy.plugins.plugin_utils.change import build_change, require
from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import TrustError, refuse_run_overrides
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError

try:  # signatures need `cryptography` on the controller (a dependency of ansible-core's usual installs)
    from ansible_collections.prodgate.deploy.plugins.plugin_utils import approvals as approvals_core
    from ansible_collections.prodgate.deploy.plugins.plugin_utils import break_glass as bg
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import collect_run_vars, open_trusted
    IMPORT_ERROR = None
except ImportError as import_exc:
    approvals_core = None
    IMPORT_ERROR = import_exc

ARGUMENT_SPEC = {
    "evidence": {"type": "path"},
    "system": {"type": "str"},
    "environment": {"type": "str"},
    "change_type": {"type": "str"},
    "change_id": {"type": "str"},
    "version": {"type": "str"},
    "artifacts": {"type": "list", "elements": "str"},
    "targets": {"type": "list", "elements": "str"},
    "plan_digest": {"type": "str"},
    "now": {"type": "str"},
    "break_glass": {"type": "bool", "default": False},
}
REFUSED_OPTIONS = ("policy",)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        if IMPORT_ERROR is not None:
            raise AnsibleActionFail(f"change_window cannot verify the signed policy: {IMPORT_ERROR}; "
                                    "install the Python package cryptography on the controller")
        refused = [o for o in REFUSED_OPTIONS if o in self._task.args]
        for option in refused:
            self._task.args.pop(option)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        try:
            run_vars = collect_run_vars(task_vars, self._templar.template)
            refuse_run_overrides(run_vars, refused)
            change = build_change(args, run_vars)
            require(change, "change_window", ("system", "environment", "change_type"))
            result.update(self._decide(change, args.get("now"), args["break_glass"]))
        except ProdgateError as exc:
            raise AnsibleActionFail(f"change_window refused: {exc}") from None
        if not result["allowed"]:
            raise AnsibleActionFail(f"change_window refused: {result['message']}", result=result)
        result["changed"] = False
        result["msg"] = result["message"]
        return result

    @staticmethod
    def _decide(change, test_now, break_glass=False):
        real_now = datetime.datetime.now(datetime.timezone.utc)
        with open_trusted(options=(), environment=change.environment, now=real_now) as trusted:
            policy = trusted.policy
            settings = freeze_window.settings_from_policy(policy.raw, policy.path)
            now, clock = real_now, "system"
            if test_now:
                # Honoured only in an environment the controller's administrator lists for a test
                # clock, never in production, so that no variable or option moves a production run
                # out of a freeze (issue 11, issue 14).
                if not trusted.settings.test_clock_allowed(change.environment, production=policy.is_production(change.environment)):
                    raise TrustError(f"option `now` sets a test clock, which environment {change.environment} does not allow: a "
                                     "test clock is honoured only in the environments listed in test_clock_environments of "
                                     "the controller trust settings, never in production; remove `now`")
                now = freeze_window.parse_instant(test_now, settings.tz, "now").astimezone(datetime.timezone.utc)
                clock = "test"
            system = policy.system(change.system)
            target = freeze_window.Target(change.system, system.get("category"), change.environment, change.change_type)
            required = policy.required_stages(change.system, change.change_type, change.environment)
            approvals, problems = [], []
            if change.evidence:
                binding = change.binding()
                report = approvals_core.verify_evidence(policy, approvals_core.load_evidence(change.evidence), binding, now=now)
                approvals, problems = report.valid, report.envelope_problems
            decision = freeze_window.evaluate_change(
                policy.raw, policy.path, target, now, approvals,
                lead_time_required="plan_submission" in required, emergency=policy.emergency, evidence_problems=problems,
                governance=trusted.settings.policy_root)   # the calendar packs are checked with the pinned root too
            if break_glass:
                # The failover is the emergency: a freeze or the lead time does not stop it, but the decision that
                # would have refused it is kept in the result, so the register shows what break-glass overrode.
                bg.rule_of(policy)  # refused when the signed policy does not allow break-glass
                decision["break_glass"] = True
                if not decision["allowed"]:
                    decision.update(allowed=True, overridden_by="break_glass",
                                    message=f"BREAK-GLASS overrides: {decision['message']}")
            decision["clock"] = clock
            decision["policy_version"] = policy.version
            decision["targets"] = change.targets
            if trusted.warnings:
                decision["warnings"] = list(trusted.warnings) + decision.get("warnings", [])
            return decision
