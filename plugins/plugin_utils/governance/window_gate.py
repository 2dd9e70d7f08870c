# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The change window's decision: freeze schedule, lead time and emergency override for one change.

:func:`decide` is what the ``change_window`` action plugin calls, the way ``approval_gate`` calls
``gate.run_gate``: it takes the trusted settings and policy the adapter opened, the change,
and the clock, and returns the decision. :func:`evaluate_change` is its pure part over plain data.
"""
from ..base import UTC, aware, parse_instant, utcnow
from ..errors import ApprovalError, TrustError
from ..schedule.freeze import FreezeSchedule
from ..schedule.settings import settings_from_policy
from ..schedule.windows import Target, windows_from_policy
from . import approvals, break_glass, calendar_pack, gate
from .lead_time import lead_time_from_approvals
from .override import check_emergency_override


# --- policy helpers ----------------------------------------------------------------------------
def system_category(raw, system):
    """The system's category from the policy catalogue (a list of {id, category} or a mapping by id)."""
    systems = raw.get("systems")
    if isinstance(systems, dict):
        entry = systems.get(system)
        return entry.get("category") if isinstance(entry, dict) else None
    if isinstance(systems, list):
        for entry in systems:
            if isinstance(entry, dict) and entry.get("id") == system:
                return entry.get("category")
    return None


def _data_end(calendar, at, tz):
    last = calendar.last_covered_date(aware(at).astimezone(tz).date())
    return last.isoformat() if last else None


# --- the change_window decision -----------------------------------------------------------------
def evaluate_change(raw, source, target, at, approvals=(), lead_time_required=False, emergency=None,
                    calendar=None, evidence_problems=(), governance=None):
    """Everything the ``change_window`` gate decides, as a dict (pure: the caller verifies evidence).

    ``raw`` is the verified policy document, ``approvals`` its verified approvals for this change,
    ``lead_time_required`` whether the change needs a plan_submission (Art. 17), ``emergency`` the
    policy's ``emergency`` rules (authorisers, threshold, waives). ``allowed`` is true when the
    change is open and the lead time is met, or when a valid emergency override covers every
    problem (a freeze always; the lead time only when ``plan_submission`` is in ``waives``).

    The calendar is the collection's years plus the signed packs the policy names in
    ``calendar.packs``, verified with ``governance`` (the pinned root that verified the policy;
    default the policy's own governance keys). ``warnings`` says when the data ends within
    ``calendar.data_warning_days`` (60) days of the change."""
    settings = settings_from_policy(raw, source)
    if calendar is None:
        calendar = calendar_pack.calendar_for_policy(raw, source, governance)
    schedule = FreezeSchedule(windows_from_policy(raw, source, settings), target, settings, calendar)
    decision = schedule.decide(at)
    warning = calendar_pack.coverage_warning(calendar, aware(at).astimezone(settings.tz).date(), settings.data_warning_days)
    result = {"allowed": False, "open": decision.open, "frozen": not decision.open, "window": decision.as_dict(),
              "lead_time": None, "override_used": False, "override": None, "evaluated_at": decision.as_dict()["at"],
              "timezone": settings.timezone_name, "windows_applying": [w.name for w in schedule.windows],
              "warnings": [warning] if warning else [], "calendar_data_ends": _data_end(calendar, at, settings.tz)}
    if warning:
        result["window"]["warning"] = warning
    problems, waivable = [], True
    if not decision.open:
        problems.append(decision.message())
    if lead_time_required and settings.lead_time:
        try:
            lead = lead_time_from_approvals(approvals, at, settings.lead_time, schedule.calendar, settings.tz)
            result["lead_time"] = lead.as_dict()
            if not lead.ok:
                problems.append(lead.message)
                waivable = waivable and "plan_submission" in ((emergency or {}).get("waives") or ())
        except ApprovalError as exc:
            result["lead_time"] = {"ok": False, "message": str(exc)}
            problems.append(str(exc))
            waivable = waivable and "plan_submission" in ((emergency or {}).get("waives") or ())
    if not problems:
        result["allowed"] = True
        result["message"] = f"{target.system}: {decision.message()}" + (
            f"; {result['lead_time']['message']}" if result["lead_time"] else "") + (
            f"; WARNING: {warning}" if warning else "")
        return result
    emergency = emergency or {}
    override = check_emergency_override(approvals, emergency.get("authorisers"), emergency.get("threshold", 1), at)
    result["override"] = override.as_dict()
    if override.ok and waivable:
        result.update(allowed=True, override_used=True)
        result["message"] = f"{target.system}: EMERGENCY OVERRIDE for: {' | '.join(problems)}; {override.message}"
        return result
    tail = override.message if not override.ok else "the emergency override does not waive the plan lead time (emergency.waives)"
    if evidence_problems and not override.ok:
        tail += "; evidence problems: " + " | ".join(evidence_problems)
    result["message"] = f"{target.system}: {' | '.join(problems)}; {tail}"
    return result


def decide(trusted, change, test_now=None, break_glass_mode=False, now=None):
    """The ``change_window`` decision for ``change`` under ``trusted`` (settings and verified policy).

    ``test_now`` sets a test clock, honoured only in an environment the controller's administrator
    lists in ``test_clock_environments``, never in production, so that no variable or option moves
    a production run out of a freeze (issues 11 and 14). In break-glass mode (the failover is the
    emergency) a freeze or the lead time does not stop the change, but the decision that would have
    refused it is kept, so the register shows what break-glass overrode."""
    policy = trusted.policy
    settings = settings_from_policy(policy.raw, policy.path)
    at, clock = now or utcnow(), "system"
    if test_now:
        if not trusted.settings.test_clock_allowed(change.environment, production=policy.is_production(change.environment)):
            raise TrustError(f"option `now` sets a test clock, which environment {change.environment} does not allow: a "
                             "test clock is honoured only in the environments listed in test_clock_environments of "
                             "the controller trust settings, never in production; remove `now`")
        at, clock = parse_instant(test_now, settings.tz, "now").astimezone(UTC), "test"
    target = Target(change.system, policy.system(change.system).get("category"), change.environment, change.change_type)
    required = policy.required_stages(change.system, change.change_type, change.environment)
    verified, problems = [], []
    if change.evidence:
        report = gate.verify_evidence(policy, approvals.load_evidence(change.evidence), change.binding(), now=at)
        verified, problems = report.valid, report.envelope_problems
    decision = evaluate_change(policy.raw, policy.path, target, at, verified,
                               lead_time_required="plan_submission" in required, emergency=policy.emergency,
                               evidence_problems=problems,
                               governance=trusted.settings.policy_root)   # the calendar packs are checked with the pinned root too
    if break_glass_mode:
        break_glass.rule_of(policy)  # refused when the signed policy does not allow break-glass
        decision["break_glass"] = True
        if not decision["allowed"]:
            decision.update(allowed=True, overridden_by="break_glass", message=f"BREAK-GLASS overrides: {decision['message']}")
    decision.update(clock=clock, policy_version=policy.version, targets=change.targets)
    if trusted.warnings:
        decision["warnings"] = list(trusted.warnings) + decision.get("warnings", [])
    return decision
