#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: change_window
short_description: Refuse a production change during a freeze window or without the plan lead time (Art. 17, 28)
version_added: "0.1.0"
description:
  - Checks, at the moment the task runs, whether a change to a system may proceed under the
    freeze windows of the signed policy (trading sessions, year-end closing, non-working days,
    cron and absolute windows; deny wins, and when allow windows apply the change must fall inside
    one of them), and whether the deployment plan was signed at least the policy's
    C(lead_time_working_days) (default 3) Chinese working days before the installation date
    (Art. 17; make-up weekend days count, holidays do not).
  - A frozen change passes only with verified C(emergency_override) approvals, each with a reason,
    from the roles the policy names in C(emergency.authorisers); the result then says
    C(override_used=true). Nothing else bypasses a freeze.
  - Evaluation is cheap and cached, so the task can run before every C(serial) batch; a rolling
    change that reaches a freeze boundary stops before the next batch.
  - The refusal reads C(frozen by <window> until <time> <tz>; next open slot <time> <tz>).
  - A year without calendar data, an unknown time zone or an unparsable window fails closed.
  - This is an action plugin; it runs on the controller and needs no connection to the hosts.
author:
  - prodgate maintainers (@prodgate)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
options:
  evidence:
    description:
      - Evidence bundle (folder of envelopes or one JSON file) holding the C(plan_submission) and any
        C(emergency_override) approvals. Defaults to C(prodgate_evidence).
      - Needed when the policy requires a plan for the change (lead time) or to override a freeze.
    type: path
  system:
    description: System id from the policy's catalogue; its category comes from there. Defaults to C(prodgate_system).
    type: str
  environment:
    description: Environment of the change. Defaults to C(prodgate_environment).
    type: str
  change_type:
    description: Art. 25 change type (version_update, routine, non_routine, maintenance, environment). Defaults to C(prodgate_change_type).
    type: str
  change_id:
    description: Change id the approvals must name. Defaults to C(prodgate_change_id).
    type: str
  version:
    description: Version being deployed, bound in the approvals. Defaults to C(prodgate_version).
    type: str
  artifacts:
    description: Release artifacts (paths or sha256 digests) bound in the approvals. Defaults to C(prodgate_artifacts).
    type: list
    elements: str
  targets:
    description: Hosts of the change, which the approvals must cover. Defaults to the play's hosts (C(ansible_play_hosts_all)), as for the gate.
    type: list
    elements: str
  plan_digest:
    description: sha256 (or path) of the deployment plan the approvals must name, when set.
    type: str
  break_glass:
    description:
      - Break-glass mode (see M(prodgate.deploy.approval_gate)). A deny window or the lead time does not stop the change,
        but the decision that would have refused it is returned with RV(overridden_by=break_glass) so the register keeps
        it. Refused when the signed policy has no C(break_glass) section.
    type: bool
    default: false
  now:
    description:
      - Test clock (ISO 8601; without offset it is read in the policy's time zone).
      - Honoured only in an environment listed in C(test_clock_environments) of the controller's trust settings,
        never in production; refused elsewhere, so that no option or variable can move a production run out of a
        freeze. For playbook tests only.
    type: str
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details:
      - The check changes nothing and decides the same in check mode and in a rehearsal (C(--check)).
  diff_mode:
    support: none
  platform:
    support: full
    platforms: all
notes:
  - Windows, calendar settings and their semantics are described in C(docs/freeze-windows.md).
  - The CLI C(prodgate calendar explain) and C(prodgate calendar windows) show the same decisions.
seealso:
  - module: prodgate.deploy.approval_gate
"""

EXAMPLES = r"""
# In a play with `serial: 1` and `any_errors_fatal: true`, run this as the first task so every
# batch is checked when it starts: a rolling change stops at the next freeze boundary.
# The prodgate_* variables (policy, evidence, change id, system, environment, change type,
# version) are set for the play or the job template.
- name: Check the change window before this batch
  prodgate.deploy.change_window:

- name: Check one system explicitly and report whether an emergency override was used
  prodgate.deploy.change_window:
    system: ta-core
  register: window

- name: Show it
  ansible.builtin.debug:
    msg: "{{ window.override }}"
  when: window.override_used
"""

RETURN = r"""
allowed:
  description: Whether the change may proceed now (always true when the task succeeds).
  returned: always
  type: bool
open:
  description: Whether no freeze applies at this instant (before any override).
  returned: always
  type: bool
frozen:
  description: The opposite of I(open).
  returned: always
  type: bool
window:
  description: The freeze decision at this instant.
  returned: always
  type: dict
  contains:
    decided_by:
      description: Names of the windows that decide the state (active deny windows, or the allow windows).
      type: list
      elements: str
    reason:
      description: Human-readable reason.
      type: str
    until:
      description: When the deciding windows stop freezing the change (ISO 8601), or null.
      type: str
    next_open:
      description: Start of the next open slot when frozen (ISO 8601), or null when unknown.
      type: str
    message:
      description: The full sentence, for example C(frozen by deny window 'trading-sessions' until ...; next open slot ...).
      type: str
  sample:
    decided_by: [trading-sessions]
    reason: deny window 'trading-sessions'
    until: "2025-09-29T11:30:00+08:00"
    next_open: "2025-09-29T11:30:00+08:00"
lead_time:
  description: The Art. 17 lead-time check, or null when the change needs no plan.
  returned: always
  type: dict
override_used:
  description: Whether an emergency override let a frozen (or late-planned) change through.
  returned: always
  type: bool
override:
  description: The override check (authorisers, threshold, approvals counted with their reasons), when one was needed.
  returned: always
  type: dict
evaluated_at:
  description: The instant evaluated, in the policy's time zone.
  returned: always
  type: str
clock:
  description: C(system), or C(test) when the I(now) option was honoured.
  returned: always
  type: str
warnings:
  description:
    - Warnings to act on before they become refusals, for example C(calendar data ends 2026-12-31 (32 day(s) after ...)
      when the calendar data ends within C(calendar.data_warning_days) (default 60) of the change; also in the message.
  returned: always
  type: list
  elements: str
overridden_by:
  description: V(break_glass) when break-glass mode let the change go ahead although the window would have refused it.
  returned: when break-glass overrode a refusal
  type: str
  sample: break_glass
break_glass:
  description: Whether the window ran in break-glass mode.
  returned: in break-glass mode
  type: bool
calendar_data_ends:
  description: The last date the calendar (the collection's years and the policy's signed calendar packs) has data for.
  returned: always
  type: str
msg:
  description: One-line summary.
  returned: always
  type: str
"""
