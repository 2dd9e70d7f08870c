# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin prodgate.deploy.release_verify: the release bundle on the controller is complete,
untampered and the approved one (Art. 8-10, 28). A thin adapter over
``plugin_utils.governance.release.verify_approved``; documentation is in plugins/modules/release_verify.py.
"""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import release
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError

ARGUMENT_SPEC = {
    "bundle": {"type": "path", "required": True},
    "sha256": {"type": "str", "required": True},
}


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            found = release.verify_approved(args["bundle"], args["sha256"])
        except ProdgateError as exc:
            raise AnsibleActionFail(f"release bundle refused: {exc}") from None
        result.update(found)
        result.pop("ok", None)
        result.update(changed=False,
                      msg=f"bundle {found['bundle']}: {found['system']} {found['version']} verified, sha256 {found['sha256']} approved")
        return result
