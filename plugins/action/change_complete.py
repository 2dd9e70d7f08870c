# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin prodgate.deploy.change_complete: record in the change register that a change
completed, so that the approval gate refuses to run it again. The register comes from the
controller's trust settings. Documentation: plugins/modules/change_complete.py.
"""
from __future__ import annotations

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.change import require
from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import load_settings
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger
from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import pop_refused, rehearsal, task_change

ARGUMENT_SPEC = {
    "change_id": {"type": "str"},
}
REFUSED_OPTIONS = ("ledger",)


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        del tmp
        refused = pop_refused(self._task.args, REFUSED_OPTIONS)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            change, run_vars = task_change(args, task_vars, self._templar.template, refused)
            check = rehearsal(self._task.check_mode, context.CLIARGS.get("check", False))
            require(change, "change_complete", ("change_id",))
            change_id = change.change_id
            settings = load_settings()
            with Ledger.open(settings.require("register_db"), awx=settings.awx) as ledger:
                if not ledger.nonces_of(change_id):
                    if check:
                        result.update(changed=False, change_id=change_id,
                                      msg=f"rehearsal: change {change_id} would be recorded as completed after its gate")
                        return result
                    raise AnsibleActionFail(f"change {change_id} never passed prodgate.deploy.approval_gate in the change "
                                            f"register {ledger.path}; run the gate first (a change is complete only after "
                                            "an approved run)")
                done = ledger.completion(change_id)
                if done:
                    result.update(changed=False, completed_at=done[0], msg=f"change {change_id} was already completed at {done[0]}")
                    return result
                if not check:
                    job_id = run_vars.get("awx_job_id")
                    ledger.mark_completed(change_id, None if job_id is None else str(job_id))
        except ProdgateError as exc:
            raise AnsibleActionFail(str(exc)) from None
        result.update(changed=True, change_id=change_id,
                      msg=f"rehearsal: change {change_id} would be recorded as completed" if check
                      else f"change {change_id} recorded as completed")
        return result
