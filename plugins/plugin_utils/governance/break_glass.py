"""Break-glass emergency changes (issue 11, Deliver 6; Art. 25, 27, 28, 31).

An emergency normally passes the gate with a signed emergency override (``emergency`` in the
policy, the ``emergency_override`` stage). When nobody who could sign the override is reachable
(a failover at night), a policy may allow break-glass: the change goes ahead on the signed
acknowledgements of the on-site supervisor and ONE implementer alone, is recorded as BREAK-GLASS,
and stays open until the roles the policy names sign a retrospective approval within the policy's
deadline in working days (ServiceNow's emergency change, approved retrospectively and flagged
until it is). ``prodgate register audit`` lists the open and the overdue ones.

The policy section (optional; without it break-glass is refused):

    break_glass:
      roles_retrospective: [it_head, coo]   # each role signs stage retrospective_approval
      deadline_working_days: 2              # counted on the policy's working-day calendar

Pure functions; the gate, the policy schema check, the register and the CLI call them:

* :func:`parse_rule` validates the section (schema errors name the path and the fix);
* :func:`rule_of` the policy's rule, or a refusal when the policy has none;
* :func:`verify_break_glass` the gate's check in break-glass mode, :func:`decision` its result;
* :func:`retrospective_deadline`, :func:`verify_retrospective` and :func:`audit` for the register.
"""
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, time as dtime, timedelta
from zoneinfo import ZoneInfo

from . import approvals as approvals_core, gate
from ..errors import ApprovalError, PolicyError
from ..base import parse_time, utcnow
from ..schedule.calendar import default_calendar
from .policy_schema import RETROSPECTIVE_STAGE

SECTION = "break_glass"
IMPLEMENTER_ACK, SUPERVISOR_ACK = "implementer_ack", "supervisor_ack"
ACK_ROLES = {IMPLEMENTER_ACK: "it_ops", SUPERVISOR_ACK: "ops_supervisor"}
MAX_DEADLINE_WORKING_DAYS = 30
DEFAULT_TIMEZONE = "Asia/Shanghai"
BREAK_GLASS_STAGE_NAME = "break_glass"   # the performed stage a break-glass decision reports
_KEYS = ("roles_retrospective", "deadline_working_days")


@dataclass(frozen=True)
class BreakGlassRule:
    roles_retrospective: tuple
    deadline_working_days: int


def parse_rule(section, where=SECTION, known_roles=None):
    """The :class:`BreakGlassRule` of a policy's ``break_glass`` section (None when absent).

    ``known_roles``: role ids the policy defines; a retrospective role outside them is an error
    (nobody could ever sign it, so the change would stay open for ever)."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise PolicyError(f"policy {where}: must be a mapping with roles_retrospective and deadline_working_days")
    unknown = sorted(str(k) for k in section if k not in _KEYS)
    if unknown:
        raise PolicyError(f"policy {where}: unknown key(s) {unknown}; allowed are {list(_KEYS)} (check the spelling)")
    roles = section.get("roles_retrospective")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
        raise PolicyError(f"policy {where}.roles_retrospective: a non-empty list of role ids (e.g. [it_head, coo]) "
                          "who approve a break-glass change afterwards")
    if len(set(roles)) != len(roles):
        raise PolicyError(f"policy {where}.roles_retrospective: {roles} lists a role twice; list each role once")
    bad = sorted(set(roles) & set(ACK_ROLES.values()))
    if bad:
        raise PolicyError(f"policy {where}.roles_retrospective: {bad} acknowledge the break-glass change itself and cannot "
                          "approve it afterwards; name approver roles such as it_head or coo")
    if known_roles is not None:
        missing = sorted(set(roles) - set(known_roles))
        if missing:
            raise PolicyError(f"policy {where}.roles_retrospective: unknown role(s) {missing}; use roles the policy "
                              f"defines ({', '.join(sorted(known_roles))})")
    days = section.get("deadline_working_days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DEADLINE_WORKING_DAYS:
        raise PolicyError(f"policy {where}.deadline_working_days: {days!r} is not a whole number of working days from 1 "
                          f"to {MAX_DEADLINE_WORKING_DAYS}")
    return BreakGlassRule(tuple(roles), days)


def rule_of(policy):
    """The policy's rule; ApprovalError when the signed policy does not allow break-glass."""
    rule = parse_rule(policy.raw.get(SECTION), known_roles=policy.rules.get("roles"))
    if rule is None:
        raise ApprovalError(f"break-glass is not allowed by policy {policy.path} (version {policy.version}): it has no "
                            "`break_glass` section; use the emergency path (a signed emergency_override), or have the "
                            "governance key holders add break_glass: {roles_retrospective: [...], deadline_working_days: N}")
    return rule


@dataclass
class BreakGlassReport(approvals_core.TeamReport):
    """The break-glass acknowledgements counted; ``ignored``: approvals of other stages, which do not count."""
    ignored: list = field(default_factory=list)


def _verified(policy, envelopes, binding, now, ledger=None):
    """(valid approvals, problems) of ``envelopes`` for ``binding``, through the gate's own checks."""
    report = approvals_core.EvidenceReport()
    binding = approvals_core.normalise_binding(binding)
    binding["_target_set"] = set(binding["targets"])
    if not binding["targets"]:
        report.envelope_problems.append("the run has no target hosts to bind the approvals to; run the gate in a play on "
                                        "the change's hosts")
    seen = {}
    for envelope in envelopes:
        approval, problem = approvals_core.verify_envelope(policy, envelope, binding, now)
        if problem:
            report.envelope_problems.append(problem)
        elif approval.nonce in seen:
            report.envelope_problems.append(f"evidence {approval.source}: nonce {approval.nonce} also used by "
                                            f"{seen[approval.nonce]}; remove the copy")
        else:
            seen[approval.nonce] = approval.source
            report.valid.append(approval)
    if ledger is not None:
        gate.check_ledger(report, ledger, binding["change_id"])
    return report.valid, report.envelope_problems


def verify_break_glass(policy, envelopes, binding, now=None, ledger=None):
    """The gate's check in break-glass mode: the on-site supervisor's and one implementer's signed
    acknowledgements, and nothing else counts. ``binding`` as for gate.verify_evidence (its
    ``implementers``, ``supervisor`` and ``launcher`` are checked when given). Every problem is
    listed; the policy must have a ``break_glass`` section."""
    now = now or utcnow()
    report = BreakGlassReport()
    try:
        rule_of(policy)
        policy.required_stages(binding.get("system"), binding.get("change_type"), binding.get("environment"))
        valid, problems = _verified(policy, envelopes, binding, now, ledger)
    except ApprovalError as exc:
        report.problems.append(str(exc))
        return report
    report.problems.extend(problems)
    acks = {IMPLEMENTER_ACK: [], SUPERVISOR_ACK: []}
    for approval in valid:
        if approval.stage in acks and approval.role == ACK_ROLES[approval.stage] and approval.decision == "approve":
            acks[approval.stage].append(approval)
        else:
            report.ignored.append(approval)
    declared = list(binding.get("implementers") or [])
    implementer_acks = [a for a in acks[IMPLEMENTER_ACK] if not declared or a.person in declared]
    supervisor = binding.get("supervisor")
    supervisor_acks = [a for a in acks[SUPERVISOR_ACK] if not supervisor or a.person == supervisor]
    if not implementer_acks:
        who = f" by one of the declared implementers {declared}" if declared else ""
        report.problems.append(f"break-glass needs an implementer's signed acknowledgement{who}: sign with `prodgate approve "
                               "--stage implementer_ack --role it_ops ...`")
    if not supervisor_acks:
        who = f" ({supervisor}, prodgate_supervisor)" if supervisor else ""
        report.problems.append(f"break-glass needs the on-site operations supervisor's signed acknowledgement{who} (Art. 27): "
                               "sign with `prodgate approve --stage supervisor_ack --role ops_supervisor ...`")
    implementers = sorted({a.person for a in implementer_acks})
    report.implementers = implementers
    report.supervisor = supervisor_acks[0].person if supervisor_acks else None
    if report.supervisor and report.supervisor in implementers and len(implementers) == 1:
        report.problems.append(f"{report.supervisor} acknowledged both as implementer and as supervisor: break-glass needs "
                               "two different people on site (Art. 27)")
    launcher = binding.get("launcher")
    if launcher is not None:
        person = gate.resolve_person(policy, launcher)
        report.launcher = person or launcher
        if person not in implementers:
            report.problems.append(f"launcher {launcher} is not the implementer who acknowledged the break-glass change "
                                   f"({', '.join(implementers) or 'none'}): it is launched by the implementer on site (Art. 27)")
    # one acknowledgement per person and stage is counted (and consumed)
    first = {}
    for approval in implementer_acks + supervisor_acks:
        first.setdefault((approval.stage, approval.person), approval)
    report.counted = list(first.values())
    return report


def retrospective_deadline(started_at, rule, calendar=None, timezone=DEFAULT_TIMEZONE):
    """The end of the ``deadline_working_days``-th working day after the day the change started
    (in the policy's time zone): the retrospective approval is due before that instant."""
    if calendar is None:
        calendar = default_calendar()
    tz = ZoneInfo(timezone)
    start = started_at if isinstance(started_at, datetime) else parse_time(started_at, "started_at")
    day = calendar.add_working_days(start.astimezone(tz).date(), rule.deadline_working_days)
    return datetime.combine(day + timedelta(days=1), dtime(0), tzinfo=tz)


def decision(policy, report, binding, rule, started_at, consume=True, calendar=None):
    """The gate's result for a passed break-glass check (the fields of gate.run_gate's
    decision, plus ``break_glass``, ``retrospective_roles`` and ``retrospective_due``)."""
    due = retrospective_deadline(started_at, rule, calendar, policy.calendar.get("timezone", DEFAULT_TIMEZONE))
    return {
        "change_id": binding["change_id"],
        "break_glass": True,
        "emergency": True,
        "required_stages": [IMPLEMENTER_ACK, SUPERVISOR_ACK],
        "performed_stage": BREAK_GLASS_STAGE_NAME,
        "checked_stages": [IMPLEMENTER_ACK, SUPERVISOR_ACK],
        "pending_stages": [{"stage": RETROSPECTIVE_STAGE, "roles": list(rule.roles_retrospective)}],
        "approvals": [{k: v for k, v in a.as_dict().items()
                       if k in ("stage", "role", "person", "issued_at", "key_id", "nonce", "reason")} for a in report.counted],
        "implementers": report.implementers,
        "supervisor": report.supervisor,
        "launcher": report.launcher,
        "policy_version": policy.version,
        "retrospective_roles": list(rule.roles_retrospective),
        "retrospective_due": due.isoformat(),
        "consumed": bool(consume),
    }


def _with_retrospective_stage(policy, rule):
    """The policy as the envelope checks see it, with the retrospective stage signed by the rule's roles."""
    rules = dict(policy.rules)
    stages = dict(rules["stages"])
    stages[RETROSPECTIVE_STAGE] = {"roles": list(rule.roles_retrospective)}
    rules["stages"] = stages
    return dataclasses.replace(policy, rules=rules)


@dataclass
class RetrospectiveReport:
    signed_roles: dict = field(default_factory=dict)    # role -> person
    missing_roles: list = field(default_factory=list)
    approvals: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def complete(self):
        return not self.missing_roles


def verify_retrospective(policy, envelopes, change, now=None):
    """Check the retrospective approvals of a recorded break-glass ``change`` (a dict with the
    binding fields change_id, system, environment, change_type, version, artifacts, targets, and
    started_at, implementers, supervisor as the register recorded them). Only approvals of stage
    retrospective_approval by the rule's roles, signed after the change started, by someone who
    was not on site for it, count."""
    now = now or utcnow()
    rule = rule_of(policy)
    report = RetrospectiveReport()
    started = parse_time(change["started_at"], "started_at") if isinstance(change["started_at"], str) else change["started_at"]
    binding = {k: change.get(k) for k in ("change_id", "system", "environment", "change_type", "version", "artifacts", "targets")}
    valid, problems = _verified(_with_retrospective_stage(policy, rule), envelopes, binding, now)
    report.problems.extend(problems)
    on_site = set(change.get("implementers") or []) | ({change["supervisor"]} if change.get("supervisor") else set())
    for approval in valid:
        where = f"evidence {approval.source} ({approval.stage} by {approval.person} as {approval.role})"
        if approval.stage != RETROSPECTIVE_STAGE:
            report.problems.append(f"{where}: only {RETROSPECTIVE_STAGE} approvals close a break-glass change; sign with "
                                   f"`prodgate approve --stage {RETROSPECTIVE_STAGE} ...`")
        elif approval.decision != "approve":
            report.problems.append(f"{where}: rejects the break-glass change; it stays open and is reported")
        elif approval.issued_at < started:
            report.problems.append(f"{where}: issued {approval.issued_at.isoformat()} before the change started at "
                                   f"{started.isoformat()}; a retrospective approval is signed after the change")
        elif approval.person in on_site:
            report.problems.append(f"{where}: {approval.person} was on site for the change and cannot approve it "
                                   "afterwards; another holder of the role signs")
        elif approval.role not in report.signed_roles:
            report.signed_roles[approval.role] = approval.person
            report.approvals.append(approval)
    report.missing_roles = [r for r in rule.roles_retrospective if r not in report.signed_roles]
    return report


def audit(rule, changes, now=None, calendar=None, timezone=DEFAULT_TIMEZONE):
    """One finding per break-glass change: ``status`` open (within the deadline), OVERDUE (past it
    with roles still missing) or closed; ``late`` when it was closed after the deadline.

    ``changes``: dicts with change_id, started_at and ``retrospective`` (the register's recorded
    retrospective approvals: dicts with role, person, issued_at)."""
    now = now or utcnow()
    findings = []
    for change in changes:
        due = retrospective_deadline(change["started_at"], rule, calendar, timezone)
        signed = {}
        for approval in change.get("retrospective") or []:
            issued = approval["issued_at"]
            issued = parse_time(issued, "issued_at") if isinstance(issued, str) else issued
            if approval["role"] in rule.roles_retrospective and approval["role"] not in signed:
                signed[approval["role"]] = (approval["person"], issued)
        missing = [r for r in rule.roles_retrospective if r not in signed]
        if missing:
            status = "OVERDUE" if now >= due else "open"
            closed_at = None
        else:
            status = "closed"
            closed_at = max(when for dummy, when in signed.values())
        findings.append({
            "change_id": change["change_id"], "break_glass": True, "status": status, "due": due.isoformat(),
            "missing_roles": missing, "signed": {role: person for role, (person, dummy) in signed.items()},
            "closed_at": closed_at.isoformat() if closed_at else None,
            "late": bool(closed_at and closed_at >= due),
        })
    return findings
