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
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError

try:  # signatures need `cryptography` on the controller (a dependency of ansible-core's usual installs)
    from ansible_collections.prodgate.deploy.plugins.plugin_utils import approvals as approvals_core
    from ansible_collections.prodgate.deploy.plugins.plugin_utils import policy as policy_core
    IMPORT_ERROR = None
except ImportError as import_exc:
    approvals_core = policy_core = None
    IMPORT_ERROR = import_exc

ARGUMENT_SPEC = {
    "policy": {"type": "path"},
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
}
# Option -> run-wide variable it defaults from.
DEFAULT_VARS = {
    "policy": "prodgate_policy", "evidence": "prodgate_evidence", "system": "prodgate_system",
    "environment": "prodgate_environment", "change_type": "prodgate_change_type", "change_id": "prodgate_change_id",
    "version": "prodgate_version", "artifacts": "prodgate_artifacts",
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def _var(self, task_vars, name):
        value = task_vars.get(name)
        return self._templar.template(value) if value is not None else None

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        if IMPORT_ERROR is not None:
            raise AnsibleActionFail(f"change_window cannot verify the signed policy: {IMPORT_ERROR}; "
                                    "install the Python package cryptography on the controller")
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        for option, var in DEFAULT_VARS.items():
            if args.get(option) in (None, []):
                args[option] = self._var(task_vars, var)
        if not args["targets"]:
            args["targets"] = self._var(task_vars, "ansible_play_batch") or [task_vars.get("inventory_hostname")]
        missing = [o for o in ("policy", "system", "environment", "change_type") if not args.get(o)]
        if missing:
            raise AnsibleActionFail("change_window needs " + ", ".join(missing) + ": set the option(s) or "
                                    + ", ".join(DEFAULT_VARS[o] for o in missing))
        try:
            result.update(self._decide(args))
        except ProdgateError as exc:
            raise AnsibleActionFail(f"change_window refused: {exc}") from None
        if not result["allowed"]:
            raise AnsibleActionFail(f"change_window refused: {result['message']}", result=result)
        result["changed"] = False
        result["msg"] = result["message"]
        return result

    @staticmethod
    def _decide(args):
        real_now = datetime.datetime.now(datetime.timezone.utc)
        policy = policy_core.load_policy(args["policy"], now=real_now)
        settings = freeze_window.settings_from_policy(policy.raw, policy.path)
        now, clock = real_now, "system"
        if args.get("now"):
            # Honoured only when the signed policy allows a test clock, so that no variable or
            # option can move a production run out of a freeze.
            if not settings.allow_test_clock:
                raise AnsibleActionFail("change_window option `now` sets a test clock, which the signed policy does not allow "
                                        "(calendar.allow_test_clock is false): remove `now` outside tests")
            now = freeze_window.parse_instant(args["now"], settings.tz, "now").astimezone(datetime.timezone.utc)
            clock = "test"
        system = policy.system(args["system"])
        target = freeze_window.Target(args["system"], system.get("category"), args["environment"], args["change_type"])
        required = policy.required_stages(args["system"], args["change_type"], args["environment"])
        approvals, problems = [], []
        if args.get("evidence"):
            binding = {k: args.get(k) for k in ("change_id", "system", "environment", "change_type", "version",
                                                "artifacts", "targets", "plan_digest")}
            report = approvals_core.verify_evidence(policy, approvals_core.load_evidence(args["evidence"]), binding, now=now)
            approvals, problems = report.valid, report.envelope_problems
        decision = freeze_window.evaluate_change(
            policy.raw, policy.path, target, now, approvals,
            lead_time_required="plan_submission" in required, emergency=policy.emergency, evidence_problems=problems)
        decision["clock"] = clock
        decision["policy_version"] = policy.version
        return decision
