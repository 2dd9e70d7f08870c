# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Art. 17: the deployment plan is submitted three working days before installation."""
import datetime as _dt
from zoneinfo import ZoneInfo

from ..base import DEFAULT_TIMEZONE, aware
from ..errors import ApprovalError, CalendarError
from ..schedule.calendar import default_calendar
from ..schedule.settings import DEFAULT_LEAD_TIME


class LeadTime:
    def __init__(self, ok, required, submitted, install_date, deadline, earliest_install, approval=None, message=""):
        self.ok, self.required, self.submitted, self.install_date = ok, required, submitted, install_date
        self.deadline, self.earliest_install, self.approval, self.message = deadline, earliest_install, approval, message

    def as_dict(self):
        return {"ok": self.ok, "required_working_days": self.required, "plan_submitted_on": self.submitted.isoformat(),
                "install_date": self.install_date.isoformat(), "submit_by": self.deadline.isoformat(),
                "earliest_install_date": self.earliest_install.isoformat() if self.earliest_install else None,
                "approval": self.approval, "message": self.message}


def check_lead_time(submitted_at, planned_start, working_days=DEFAULT_LEAD_TIME, calendar=None, tz=DEFAULT_TIMEZONE, approval=None):
    """Art. 17: the plan is submitted at least ``working_days`` working days before the installation
    date, i.e. on or before the ``working_days``-th working day before it (dates in ``tz``).
    For an installation on 2025-10-09 and 3 days that is 2025-09-28 (a make-up Sunday)."""
    cal = calendar or default_calendar()
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    submitted = aware(submitted_at).astimezone(zone).date()
    install = aware(planned_start).astimezone(zone).date()
    deadline = cal.add_working_days(install, -working_days)
    ok = submitted <= deadline
    earliest = submitted
    if ok:
        message = (f"lead time met: plan submitted {submitted}, installation {install}, "
                   f"{working_days} working days needed (submit by {deadline})")
    else:
        try:
            if working_days:
                # The earliest date whose deadline is still on or after the submission date.
                first = submitted if cal.is_working_day(submitted) else cal.add_working_days(submitted, 1)
                earliest = cal.add_working_days(first, working_days - 1) + _dt.timedelta(days=1)
            move = f"move the installation to {earliest} or later"
        except CalendarError as exc:
            earliest, move = None, f"the earliest installation date is unknown ({exc})"
        message = (f"lead time not met (Art. 17): the plan was submitted {submitted} but an installation on {install} "
                   f"needs it by {deadline} ({working_days} working days before, make-up days counted): "
                   f"{move}, or pass it as an emergency change")
    return LeadTime(ok, working_days, submitted, install, deadline, earliest, approval, message)


def approval_field(item, name, default=None):
    """A field of a verified approval, given as an object or a dict."""
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def lead_time_from_approvals(approvals, at=None, working_days=DEFAULT_LEAD_TIME, calendar=None, tz=DEFAULT_TIMEZONE):
    """Apply :func:`check_lead_time` to the earliest verified ``plan_submission`` approval.

    ``approvals`` are already verified (``gate.verify_evidence(...).valid``): objects or
    dicts with stage, role, person, issued_at, decision and the ``planned_start`` the plan binds.
    The installation date is the earlier of that planned start and ``at`` (the run's clock): a
    change run before its planned start had only the lead time it really had."""
    plans = [a for a in approvals if approval_field(a, "stage") == "plan_submission" and approval_field(a, "decision", "approve") == "approve"]
    if not plans:
        raise ApprovalError("no verified plan_submission approval: Art. 17 needs the deployment plan signed by the IT head "
                            "at least 3 working days before installation; sign it with `prodgate approve --stage plan_submission`")
    plan = min(plans, key=lambda a: approval_time(approval_field(a, "issued_at"), "issued_at"))
    start = approval_field(plan, "planned_start")
    if start is None and at is None:
        raise ApprovalError("the plan_submission approval names no planned_start: "
                            "sign the plan with `prodgate approve --stage plan_submission --planned-start ...`")
    start = approval_time(start, "planned_start") if start is not None else None
    if at is not None and (start is None or aware(at) < start):
        start = aware(at)
    summary = {"person": approval_field(plan, "person"), "role": approval_field(plan, "role"),
               "issued_at": approval_time(approval_field(plan, "issued_at"), "issued_at").isoformat()}
    return check_lead_time(approval_time(approval_field(plan, "issued_at"), "issued_at"), start, working_days, calendar, tz, summary)


def approval_time(value, name):
    """An approval's time field as an aware datetime, or an ApprovalError naming the field and the fix."""
    if isinstance(value, _dt.datetime):
        return aware(value)
    if isinstance(value, str):
        try:
            moment = _dt.datetime.fromisoformat(value)
        except ValueError:
            raise ApprovalError(f"{name} {value[:64]!r} is not an ISO 8601 date-time with offset "
                                "(e.g. 2026-03-02T09:00:00+08:00): re-sign the approval with `prodgate approve`") from None
        if moment.tzinfo is None:
            raise ApprovalError(f"{name} {value!r} has no UTC offset: approvals carry aware times")
        return moment
    raise ApprovalError(f"{name} is missing or not a date-time ({value!r})")
