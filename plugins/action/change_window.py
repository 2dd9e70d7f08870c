# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin prodgate.deploy.change_window: freeze windows, lead time, emergency override.

A thin adapter: it opens the controller's trusted settings and policy (``trust.open_trusted``) and
leaves the decision to ``plugin_utils.governance.window_gate.decide``, as approval_gate does with
``gate.run_gate``. Documentation is in
plugins/modules/change_window.py.
"""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.change import require

try:  # signatures need `cryptography` on the controller (a dependency of ansible-core's usual installs)
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import window_gate
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import open_trusted, pop_refused, task_change
    IMPORT_ERROR = None
except ImportError as import_exc:
    window_gate = None
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
        if IMPORT_ERROR is not None:
            raise AnsibleActionFail(f"change_window cannot verify the signed policy: {IMPORT_ERROR}; "
                                    "install the Python package cryptography on the controller")
        refused = pop_refused(self._task.args, REFUSED_OPTIONS)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        try:
            change = task_change(args, task_vars, self._templar.template, refused)[0]
            require(change, "change_window", ("system", "environment", "change_type"))
            with open_trusted(options=(), environment=change.environment) as trusted:
                result.update(window_gate.decide(trusted, change, test_now=args.get("now"), break_glass_mode=args["break_glass"]))
        except ProdgateError as exc:
            raise AnsibleActionFail(f"change_window refused: {exc}") from None
        if not result["allowed"]:
            raise AnsibleActionFail(f"change_window refused: {result['message']}", result=result)
        result["changed"] = False
        result["msg"] = result["message"]
        return result
