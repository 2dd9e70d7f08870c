# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The approval gate: what the verified approvals of a change must add up to, and the decision.

``verify_evidence`` checks every envelope (approvals.verify_envelope; Art. 16-20, 27), then what
the policy requires for the change: quorum per role, stage order, separation of duties,
implementers and supervisor, the launching user, replay. It never raises for bad evidence:
everything wrong is a line in ``report.problems`` (fail closed: the gate passes only when that
list is empty). :func:`run_gate` is the decision the ``approval_gate`` action plugin calls.

A run is either the whole change (``stage="all"``: every required stage) or the trial run
(``stage="trial_run"``: every stage the path requires before ``trial_run``; the trial-run
summary and the later stages are reported as pending and nothing may be consumed);
``stage="auto"`` performs the trial run until the trial-run summary is signed, then the whole
change. Which stages come before which is the policy's (``Policy.stages_before``).
"""
from ..base import utcnow
from ..errors import ApprovalError
from .approvals import EvidenceReport, normalise_binding, verify_envelope
from .policy_schema import ACK_STAGES, EMERGENCY_STAGE

ART27_MIN_IMPLEMENTERS = 2
ALL_STAGES = "all"
TRIAL_RUN = "trial_run"
AUTO_STAGE = "auto"
RUN_STAGES = (ALL_STAGES, TRIAL_RUN, AUTO_STAGE)


def verify_evidence(policy, envelopes, binding, now=None, ledger=None, stage=ALL_STAGES):  # pylint: disable=too-many-arguments
    """Verify ``envelopes`` for the change in ``binding``; returns an :class:`EvidenceReport`.

    ``binding`` keys: change_id, system, environment, change_type, version, artifacts (sha256
    digests or files), targets (host names), and optionally plan_digest, implementers (person
    ids), supervisor (person id), launcher (login or person id), emergency (bool).
    ``ledger`` (a :class:`register.ledger.Ledger`) adds the replay and completed-change checks.
    ``stage`` (one of RUN_STAGES) is how far this run goes: ``all`` the whole change,
    ``trial_run`` up to the trial run, ``auto`` the trial run until its summary is signed.
    Invalid evidence is refused whatever the stage, also in an envelope of a pending stage.
    """
    now = now or utcnow()
    report = EvidenceReport()
    try:
        binding = normalise_binding(binding)
        report.required_stages = policy.required_stages(binding["system"], binding["change_type"], binding["environment"],
                                                        emergency=bool(binding.get("emergency")))
    except ApprovalError as exc:
        report.problems.append(str(exc))
        return report
    binding["_target_set"] = set(binding["targets"])
    if policy.requires_artifacts(binding["change_type"]) and not binding["artifacts"]:
        report.problems.append(f"change type {binding['change_type']} deploys a release but the run names no artifact; "
                               "set prodgate_artifacts to the package file(s) or their sha256 (Art. 8)")
    if not binding["targets"]:
        report.problems.append("the run has no target hosts to bind the approvals to; run the gate in a play on the change's hosts")
    seen_nonces = {}
    for envelope in envelopes:
        approval, problem = verify_envelope(policy, envelope, binding, now)
        if problem:
            report.envelope_problems.append(problem)
            continue
        if approval.nonce in seen_nonces:
            report.envelope_problems.append(f"evidence {approval.source}: nonce {approval.nonce} also used by {seen_nonces[approval.nonce]}; "
                                            "every approval carries its own nonce, remove the copy")
            continue
        seen_nonces[approval.nonce] = approval.source
        report.valid.append(approval)
    if ledger is not None:
        check_ledger(report, ledger, binding["change_id"])
    report.problems.extend(report.envelope_problems)
    _check_requirements(policy, report, binding, stage)
    return report


def check_ledger(report, ledger, change_id):
    done = ledger.completion(change_id)
    if done:
        report.problems.append(f"change {change_id} already completed at {done[0]}; a completed change cannot run again "
                               "(replay refused): open a new change with a new change id and new approvals")
    used = ledger.consumed([a.nonce for a in report.valid])
    if used:
        keep = []
        for approval in report.valid:
            if approval.nonce in used:
                change, when = used[approval.nonce]
                report.envelope_problems.append(
                    f"evidence {approval.source} ({approval.stage} by {approval.person}): replay refused, nonce {approval.nonce} "
                    f"was already consumed by change {change} at {when}; approvals are single-use, sign a new one")
            else:
                keep.append(approval)
        report.valid = keep


def _stage_candidates(policy, role, exclude):
    return sorted(pid for pid, p in policy.people.items()
                  if role in p.get("roles", []) and pid not in exclude
                  and any(not k.get("revoked") for k in p.get("keys", [])))


def _approve_hint(stage, role, binding):
    return (f"sign with `prodgate approve --stage {stage} --role {role} --change-id {binding['change_id']} "
            f"--system {binding['system']} --environment {binding['environment']} ...`")


def _stage_quorum(policy, by_stage_role, stage):
    """[(role, need, {person: approvals})] of ``stage``: the quorum of each role that signs it; the
    emergency override counts the people of all its authoriser roles together."""
    if stage == EMERGENCY_STAGE:
        emergency = policy.emergency
        people = {}
        for role in emergency["authorisers"]:
            people.update(by_stage_role.get((stage, role), {}))
        return [("|".join(emergency["authorisers"]), emergency["threshold"], people)]
    thresholds = policy.roles
    return [(role, thresholds.get(role, 1), by_stage_role.get((stage, role), {})) for role in policy.stage_roles(stage)]


def _stage_signed(policy, by_stage_role, stage):
    return all(len(people) >= need for dummy, need, people in _stage_quorum(policy, by_stage_role, stage))


def _plan_run(policy, report, by_stage_role, stage):
    """Fill the report's performed, checked and pending stages for a run going as far as ``stage``."""
    required = report.required_stages
    if not required:
        return
    if stage not in RUN_STAGES:
        raise ApprovalError(f"unknown run stage {stage!r}; use one of [{', '.join(RUN_STAGES)}]")
    if stage == AUTO_STAGE:
        # The trial run until its summary is signed; the whole change afterwards, or at once on a path without one.
        trial_pending = TRIAL_RUN in required and not _stage_signed(policy, by_stage_role, TRIAL_RUN)
        stage = TRIAL_RUN if trial_pending else ALL_STAGES
    if stage == ALL_STAGES:
        path = policy.path_of(required)
        report.performed_stage = path[-1] if path else required[-1]
        report.checked_stages, report.pending_stages = list(required), []
    else:
        report.performed_stage = stage
        report.checked_stages, report.pending_stages = policy.stages_before(required, stage)


def _check_requirements(policy, report, binding, stage=ALL_STAGES):  # pylint: disable=too-many-locals
    required = report.required_stages
    approvals = [a for a in report.valid if a.stage in required]
    for a in approvals:
        # A signed rejection of any stage of the change blocks every run of it, the trial run included.
        if a.decision == "reject":
            report.problems.append(f"stage {a.stage}: {a.person} ({a.role}) signed a rejection"
                                   f"{': ' + a.reason if a.reason else ''}; the change cannot go ahead as approved")
    approvals = [a for a in approvals if a.decision == "approve"]
    by_stage_role = {}
    for a in approvals:
        by_stage_role.setdefault((a.stage, a.role), {}).setdefault(a.person, []).append(a)
    try:
        _plan_run(policy, report, by_stage_role, stage)
    except ApprovalError as exc:
        report.problems.append(str(exc))
        return
    approvals = [a for a in approvals if a.stage in report.checked_stages]
    report.counted = approvals
    completion = {}
    for name in required:
        if name in report.pending_stages:
            for role, need, people in _stage_quorum(policy, by_stage_role, name):
                report.rows.append({"stage": name, "role": role, "need": need, "present": sorted(people), "status": "pending"})
            continue
        stage_done = []
        for role, need, people in _stage_quorum(policy, by_stage_role, name):
            report.rows.append({"stage": name, "role": role, "need": need, "present": sorted(people),
                                "status": "ok" if len(people) >= need else f"missing {need - len(people)}"})
            if len(people) < need:
                report.problems.append(_missing(policy, binding, name, role, need, people))
                stage_done = None
            elif stage_done is not None:
                firsts = sorted(min(x.issued_at for x in lst) for lst in people.values())
                stage_done.append(firsts[need - 1])
        if stage_done:
            completion[name] = max(stage_done)
    _check_order(policy, report, approvals, completion)
    _check_separation(report, approvals)
    _check_team(policy, report, approvals, binding)


def _missing(policy, binding, stage, role, need, people):
    if stage == EMERGENCY_STAGE:
        cands = sorted({c for r in policy.emergency["authorisers"] for c in _stage_candidates(policy, r, people)})
        return (f"stage {stage}: emergency override is missing: need {need} of [{', '.join(cands)}] "
                f"with a reason; sign with `prodgate approve --stage {stage} --reason ...`")
    cands = _stage_candidates(policy, role, people)
    have = f" (have {len(people)}: {', '.join(sorted(people))})" if people else ""
    article = " (Art. 27: two implementers and the supervisor on site)" if stage in ACK_STAGES else ""
    return (f"stage {stage}: approval for role {role} is missing: need {need} of "
            f"[{', '.join(cands)}]{have}{article}; {_approve_hint(stage, role, binding)}")


def _check_order(policy, report, approvals, completion):
    ordered = policy.path_of(report.checked_stages)
    for earlier, later in zip(ordered, ordered[1:]):
        if earlier not in completion:
            continue
        too_early = [a for a in approvals if a.stage == later and a.issued_at < completion[earlier]]
        for a in too_early:
            report.problems.append(
                f"stage order: {later} was signed by {a.person} at {a.issued_at.isoformat()} before {earlier} was complete "
                f"({completion[earlier].isoformat()}); {earlier} must be approved first (Art. 20), {a.person} must sign {later} again")


def _check_separation(report, approvals):
    roles_of = {}
    for a in approvals:
        roles_of.setdefault(a.person, {}).setdefault(a.role, set()).add(a.stage)
    ack_roles = {a.role: a.stage for a in approvals if a.stage in ACK_STAGES}
    for person, roles in sorted(roles_of.items()):
        if len(roles) < 2:
            continue
        desc = ", ".join(f"{r} ({'/'.join(sorted(s))})" for r, s in sorted(roles.items()))
        acks = sorted(r for r in roles if r in ack_roles)
        if "implementer_ack" in {ack_roles[r] for r in acks} and len(roles) > len(acks):
            report.problems.append(f"separation of duties: {person} is an implementer and also an approver: {desc}; "
                                   "implementers, approvers and the supervisor must be distinct people (Art. 27); "
                                   "have another holder of the approver role sign")
        elif len(acks) == 2 or (acks and len(roles) > len(acks)):
            report.problems.append(f"separation of duties: {person} is on the implementation team and also counts for another role: {desc}; "
                                   "implementers, approvers and the supervisor must be distinct people (Art. 27)")
        else:
            report.problems.append(f"separation of duties: {person} counts for two roles: {desc}; nobody may count "
                                   "for two roles in one change; have another holder of one of these roles sign")


def resolve_person(policy, login):
    if login in policy.people:
        return login
    for pid, person in policy.people.items():
        if login in (person.get("logins") or []):
            return pid
    return None


def _check_team(policy, report, approvals, binding):
    implementers = sorted({a.person for a in approvals if a.stage == "implementer_ack"})
    supervisors = sorted({a.person for a in approvals if a.stage == "supervisor_ack"})
    report.implementers = implementers
    report.supervisor = supervisors[0] if supervisors else None
    needs_team = "implementer_ack" in report.checked_stages
    if needs_team and policy.is_production(binding.get("environment")):
        # Art. 27 is a floor the policy may raise but not lower: two distinct implementers and the
        # supervisor on site for every production change, whatever thresholds the policy sets.
        if len(implementers) < ART27_MIN_IMPLEMENTERS:
            report.problems.append(
                f"Art. 27: a production change needs {ART27_MIN_IMPLEMENTERS} distinct implementers, it has "
                f"{len(implementers)} ({', '.join(implementers) or 'none'}); a policy may raise this minimum but not lower "
                "it; a second implementer signs with `prodgate approve --stage implementer_ack --role it_ops ...`")
        if not supervisors:
            report.problems.append("Art. 27: a production change needs the operations supervisor on site: "
                                   "sign with `prodgate approve --stage supervisor_ack --role ops_supervisor ...`")
    declared = binding.get("implementers") or []
    for person in declared:
        if person not in implementers:
            report.problems.append(f"declared implementer {person} (prodgate_implementers) has no valid implementer_ack; "
                                   f"{person} signs with `prodgate approve --stage implementer_ack --role it_ops ...`")
    if declared:
        for person in implementers:
            if person not in declared:
                report.problems.append(f"{person} acknowledged as implementer but is not in prodgate_implementers {sorted(declared)}; "
                                       "list the real implementation team")
    supervisor = binding.get("supervisor")
    if supervisor and supervisor not in supervisors:
        report.problems.append(f"declared supervisor {supervisor} (prodgate_supervisor) has no valid supervisor_ack; "
                               f"{supervisor} signs with `prodgate approve --stage supervisor_ack --role ops_supervisor ...`")
    launcher = binding.get("launcher")
    if launcher is not None and needs_team:
        person = resolve_person(policy, launcher)
        report.launcher = person or launcher
        if person not in implementers:
            report.problems.append(
                f"launcher {launcher} is not one of the implementers [{', '.join(implementers)}]: the change must be launched "
                "by one of the implementers who acknowledged it (Art. 27); launch it as one of them (AWX user or local user), "
                "or map the login to a person with `logins:` in the policy")


# ---- the gate -------------------------------------------------------------------------------

def run_gate(policy, envelopes, binding, ledger, now=None, consume=True, job_id=None, stage=ALL_STAGES, record=None):  # pylint: disable=too-many-arguments
    """The gate's decision: a result dict when the run may proceed, else GateRefused listing every
    problem. ``stage`` as in :func:`verify_evidence`. With ``consume`` the approvals' nonces are
    recorded as used (single-use), only when the run performs the whole change: a trial run
    leaves them for the formal go-live. ``ledger`` is the change register's single-use ledger: the
    nonces are consumed in the same transaction that appends the decision to the register; a
    decision that consumes nothing (trial run, rehearsal) is appended too. ``record`` adds fields
    to the register entry (rehearsal, launcher source)."""
    report = verify_evidence(policy, envelopes, binding, now=now, ledger=ledger, stage=stage)
    if not report.ok:
        problems = report.problems or ["no stage is required: check the policy's change types"]
        raise GateRefused(problems, report)
    consume = bool(consume) and not report.pending_stages
    decision = {
        "change_id": binding["change_id"],
        "required_stages": report.required_stages,
        "performed_stage": report.performed_stage,
        "checked_stages": report.checked_stages,
        "pending_stages": [{"stage": s, "roles": policy.stage_roles(s)} for s in report.pending_stages],
        "approvals": [{k: v for k, v in a.as_dict().items() if k in ("stage", "role", "person", "issued_at", "key_id", "nonce", "reason")}
                      for a in report.counted],
        "implementers": report.implementers,
        "supervisor": report.supervisor,
        "launcher": report.launcher,
        "policy_version": policy.version,
        "consumed": consume,
    }
    if ledger is not None:
        entry = dict(decision, system=binding.get("system"), environment=binding.get("environment"),
                     change_type=binding.get("change_type"), version=binding.get("version"),
                     targets=list(binding.get("targets") or []), emergency=bool(binding.get("emergency")), **(record or {}))
        if consume:
            ledger.consume([a.nonce for a in report.counted], binding["change_id"], job_id=job_id, decision=entry)
        else:
            ledger.record_decision(entry, job_id=job_id)
    return decision


class GateRefused(ApprovalError):
    """The gate refused: ``problems`` lists every missing or invalid item with its fix."""

    def __init__(self, problems, report=None):
        self.problems = list(problems)
        self.report = report
        partial = report is not None and report.pending_stages
        what = f"the change at stage {report.performed_stage} (stages before it)" if partial else "the change"
        super().__init__(f"approval gate refused {what} ({len(self.problems)} problem(s)): " + " | ".join(self.problems))
