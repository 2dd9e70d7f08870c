#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: change_complete
short_description: Record that an approved change completed, so it can never run again (Art. 27)
version_added: "0.1.0"
description:
  - Marks the change as completed in the change register (its single-use ledger), which the controller's trust
    settings name; afterwards M(prodgate.deploy.approval_gate) refuses the change id, whatever evidence is presented.
  - The change must have passed the approval gate on the same register. In a rehearsal (C(--check)) nothing is recorded.
  - Runs once per play on the controller.
author:
  - prodgate maintainers (@prodgate)
options:
  change_id:
    description: The change id. Default from C(prodgate_change_id).
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the ledger.
    support: full
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: all
seealso:
  - module: prodgate.deploy.approval_gate
"""

EXAMPLES = r"""
- name: Record the change as completed (last task of the change)
  prodgate.deploy.change_complete:
    change_id: CHG-1001
"""

RETURN = r"""
change_id:
  description: The change recorded.
  returned: changed
  type: str
completed_at:
  description: When the change had already been completed.
  returned: when already completed
  type: str
"""
