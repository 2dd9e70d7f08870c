#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: approval_gate
short_description: Refuse a production change that lacks the signed approvals the policy requires (Art. 12, 16-20, 27)
version_added: "0.1.0"
description:
  - Takes the signed policy, its pinned governance root and the change register from the controller's trust settings
    (C(/etc/prodgate/controller.yml), or the environment an AWX credential injects), never from the run; run
    variables such as C(prodgate_policy), C(prodgate_policy_root) or C(prodgate_ledger) are refused, naming where the
    setting belongs. A production change with a policy not pinned to a governance root is refused. A policy version
    older than the highest this register accepted under the same root is refused (anti-rollback).
  - Loads the signed policy (governance signatures, threshold and expiry checked) and the evidence bundle
    of the change (one DSSE envelope per approver over an in-toto Statement v1), and decides whether the
    change may proceed.
  - Computes the required stages from the system's category and type (the Art. 20 matrix in the policy),
    the change type (Art. 25) and the environment; production changes also need two implementer
    acknowledgements and one supervisor acknowledgement (Art. 27).
  - Verifies every envelope (Ed25519 signature, key held by a person with that role and not revoked,
    validity window) and its binding to this run (change id, system, environment, change type, version,
    artifact sha256 digests, plan digest, target hosts).
  - Enforces the quorum of every role, the stage order (for example trial run before go-live),
    separation of duties (nobody counts for two roles; approvers, implementers and the supervisor are
    distinct people) and that the launching user is one of the implementers. The launching user is
    C(awx_user_name) when the controller's trust settings say this is an AWX execution environment and AWX's job
    environment is present, otherwise the real user id of the process (never C(USER) or C(LOGNAME)).
  - Art. 27 is a floor. A production change needs two distinct implementers and the supervisor, whatever the policy's
    thresholds.
  - Refuses a change already recorded as completed and any approval whose nonce was already consumed;
    on success it records the nonces as consumed in the change register, in the same transaction that appends the
    gate's decision to it, so every approval is single-use across controllers and AWX jobs sharing the register.
  - With O(stage=trial_run) it gates the trial run of the change (Art. 18, 20) instead of the whole change - every
    stage the policy path requires before C(trial_run) must be satisfied, C(trial_run) and the later stages are
    returned as pending, and nothing is consumed, so the formal go-live uses the same approvals. With O(stage=auto)
    it gates the trial run until the trial-run summary is signed, and the whole change afterwards (or at once on a
    path without a trial run); RV(performed_stage) says which. Which stages come before which is the policy's.
  - Fails closed, listing every missing or invalid item and how to fix it.
  - Must be used with C(run_once) set to true (it refuses otherwise), because the decision covers every host of the
    play and a refused C(run_once) task stops all of them. Put it first in the play that targets the change's hosts, without
    C(serial), so that the play hosts are the targets bound by the approvals.
  - Each option falls back to the run-wide variable named in its description.
author:
  - prodgate maintainers (@prodgate)
options:
  evidence:
    description:
      - Evidence bundle, a folder of C(*.json) envelopes or one JSON file. Default from C(prodgate_evidence).
      - Evidence files are not trusted, each envelope is verified.
    type: path
  change_id:
    description: Change id the approvals must name. Default from C(prodgate_change_id).
    type: str
  change_type:
    description: Change type (Art. 25, plus C(initial_go_live) for a first go-live). Default from C(prodgate_change_type).
    type: str
  system:
    description: System id in the policy's systems catalogue. Default from C(prodgate_system).
    type: str
  environment:
    description: Environment of the system, for example C(production). Default from C(prodgate_environment).
    type: str
  version:
    description: Release version the approvals must name. Default from C(prodgate_version).
    type: str
  artifacts:
    description:
      - Release artifacts deployed by this run, each a sha256 digest (optionally C(sha256:) prefixed) or a file on the controller.
      - Every one must be a subject of every approval. Default from C(prodgate_artifacts).
    type: list
    elements: str
  targets:
    description: Hosts the approvals must cover (names or globs in the approvals). Default the play's hosts (C(ansible_play_hosts_all)).
    type: list
    elements: str
  plan:
    description: Deployment plan document (file or sha256); when set, approvals must carry its digest. Default from C(prodgate_plan).
    type: str
  implementers:
    description: Person ids of the implementers; each must have acknowledged. Default from C(prodgate_implementers).
    type: list
    elements: str
  supervisor:
    description: Person id of the on-site supervisor; must have acknowledged. Default from C(prodgate_supervisor).
    type: str
  emergency:
    description:
      - Treat the change as an emergency change; an C(emergency_override) approval with a reason, signed by a role the
        policy allows, is then required and waives the stages the policy lists (never C(go_live) nor the Art. 27 acknowledgements).
    type: bool
    default: false
  break_glass:
    description:
      - Break-glass mode for an emergency such as a database failover when nobody who could sign an emergency override is
        reachable. Only the signed acknowledgements of the on-site supervisor and one implementer are checked; the
        signed policy must have a C(break_glass) section. The decision is recorded as BREAK-GLASS and the change stays
        open in the register until the roles the section names sign a C(retrospective_approval) within its deadline
        (working days); C(prodgate register audit) reports open and overdue ones.
      - Cannot be combined with O(emergency).
    type: bool
    default: false
  stage:
    description:
      - How far this run goes.
      - V(all) performs the whole change; every stage the policy requires must be satisfied and the approvals are consumed.
      - V(trial_run) performs the trial run; every stage the path requires before C(trial_run) (with the Art. 27
        acknowledgements and the emergency override, which every run needs) must be satisfied, the later stages are
        returned in RV(pending_stages), and no approval is consumed. Refused when the path has no trial run.
      - V(auto) is V(trial_run) while the trial-run summary (stage C(trial_run)) is not signed, else V(all).
      - Invalid, forged, expired or replayed evidence refuses the run in every stage, also in an envelope of a pending stage.
    type: str
    choices: [all, trial_run, auto]
    default: all
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the ledger.
    support: full
    details:
      - In a rehearsal (the whole run with C(--check)) the decision is made and recorded, but the approvals are not consumed.
      - C(check_mode) set on the gate task alone (or C(check_mode=false) inside a rehearsal) is refused.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: all
notes:
  - An action plugin; it runs on the controller and never connects to the hosts.
seealso:
  - module: prodgate.deploy.change_complete
"""

EXAMPLES = r"""
- name: Go-live gate
  hosts: ta_core_production
  gather_facts: false
  vars:
    prodgate_evidence: /srv/changes/CHG-1001/evidence
    prodgate_change_id: CHG-1001
    prodgate_change_type: version_update
    prodgate_system: ta-core
    prodgate_environment: production
    prodgate_version: 3.2.1
    prodgate_artifacts: [/srv/releases/ta-core-3.2.1.tar.gz]
    prodgate_implementers: [ivan, jane]
    prodgate_supervisor: sam
  tasks:
    - name: Refuse the change unless every signed approval is present
      prodgate.deploy.approval_gate:
      run_once: true

# A first go-live: the trial run until the trial-run summary is signed (approvals read, not consumed),
# then the formal go-live (approvals consumed).
- name: Go-live gate, trial run or formal go-live
  hosts: ta_core_production
  gather_facts: false
  tasks:
    - name: Gate the stage the signed approvals allow
      prodgate.deploy.approval_gate:
        change_type: initial_go_live
        stage: auto
      register: gate
      run_once: true

    - name: Close the change after the formal go-live only
      prodgate.deploy.change_complete:
      run_once: true
      when: gate.performed_stage == 'go_live'
"""

RETURN = r"""
change_id:
  description: The change the decision is about.
  returned: always
  type: str
  sample: CHG-1001
required_stages:
  description: Stages the policy requires for this change, in order.
  returned: always
  type: list
  elements: str
  sample: [plan_submission, coo_approval, internal_review, go_live, implementer_ack, supervisor_ack]
performed_stage:
  description:
    - The stage this run performs, V(trial_run) for a trial run, else the last stage of the path (V(go_live) for a go-live or upgrade).
  returned: success
  type: str
  sample: trial_run
checked_stages:
  description: The stages this run needs, all satisfied; every required stage unless the run stops before a stage.
  returned: success
  type: list
  elements: str
  sample: [plan_submission, coo_approval, internal_review, implementer_ack, supervisor_ack]
pending_stages:
  description: The stages still to be signed after this run, with the roles that sign them; empty for the whole change.
  returned: success
  type: list
  elements: dict
  sample: [{stage: trial_run, roles: [it_pm, business_owner]}, {stage: go_live, roles: [business_owner, risk_compliance, coo, president_office]}]
  contains:
    stage:
      description: Stage still to be signed.
      type: str
    roles:
      description: Roles that sign it.
      type: list
      elements: str
approvals:
  description: The verified approvals counted for this run, those of RV(checked_stages) (for the change register).
  returned: success
  type: list
  elements: dict
  contains:
    stage:
      description: Stage approved.
      type: str
    role:
      description: Role the person signed as.
      type: str
    person:
      description: Person id in the policy.
      type: str
    issued_at:
      description: When the approval was signed (ISO-8601).
      type: str
    key_id:
      description: sha256 of the Ed25519 public key that signed.
      type: str
    nonce:
      description: The single-use nonce, consumed when RV(consumed) is true.
      type: str
    reason:
      description: Reason given (emergency overrides).
      type: str
implementers:
  description: Person ids of the implementers who acknowledged.
  returned: success
  type: list
  elements: str
supervisor:
  description: Person id of the supervisor who acknowledged.
  returned: success
  type: str
launcher:
  description: Person id of the launching user.
  returned: success
  type: str
policy_version:
  description: Version of the policy applied.
  returned: success
  type: int
consumed:
  description: Whether the approvals' nonces were recorded as consumed (false in check mode and for a trial run).
  returned: success
  type: bool
decision_ms:
  description: Time the decision took (policy and evidence loading, verification, ledger), in milliseconds.
  returned: success
  type: float
problems:
  description: Every missing or invalid item, with its fix.
  returned: failure
  type: list
  elements: str
"""
