# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin prodgate.deploy.change_complete: record in the ledger that a change completed,
so that the approval gate refuses to run it again. Documentation: plugins/modules/change_complete.py.
"""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.ledger import Ledger

ARGUMENT_SPEC = {
    "change_id": {"type": "str"},
    "ledger": {"type": "path"},
}


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        change_id = args.get("change_id") or self._templar.template(task_vars.get("prodgate_change_id"))
        ledger_path = args.get("ledger") or self._templar.template(task_vars.get("prodgate_ledger"))
        if not change_id:
            raise AnsibleActionFail("change_complete needs change_id: set the option or prodgate_change_id")
        change_id = str(change_id)
        try:
            with Ledger(ledger_path) as ledger:
                if not ledger.nonces_of(change_id):
                    raise AnsibleActionFail(f"change {change_id} never passed prodgate.deploy.approval_gate in ledger {ledger.path}; "
                                            "run the gate first (a change is complete only after an approved run)")
                done = ledger.completion(change_id)
                if done:
                    result.update(changed=False, completed_at=done[0], msg=f"change {change_id} was already completed at {done[0]}")
                    return result
                if not self._task.check_mode:
                    job_id = task_vars.get("awx_job_id")
                    ledger.mark_completed(change_id, None if job_id is None else str(job_id))
        except ProdgateError as exc:
            raise AnsibleActionFail(str(exc))
        result.update(changed=True, change_id=change_id, msg=f"change {change_id} recorded as completed")
        return result
