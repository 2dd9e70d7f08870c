"""governance/lead_time.py, Art. 17: the deployment plan is submitted three working days before the
installation, counted on the Chinese working-day calendar (make-up days count, holidays do not), in
the policy's time zone."""
import datetime as dt

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError, CalendarError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.lead_time import check_lead_time, lead_time_from_approvals
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.calendar import default_calendar

CST = dt.timezone(dt.timedelta(hours=8))
UTC = dt.timezone.utc


def at(text):
    return dt.datetime.fromisoformat(text)


def plan(issued_at, planned_start=None, person="henry", decision="approve", stage="plan_submission"):
    return {"stage": stage, "role": "it_head", "person": person, "decision": decision, "issued_at": issued_at,
            "planned_start": planned_start}


# ---- check_lead_time ----------------------------------------------------------------------------

def test_the_third_working_day_before_national_day_is_a_make_up_sunday():
    """Installation 2025-10-09 (after the 1-8 October holiday): the plan is due on Sunday 2025-09-28,
    a make-up working day."""
    lead = check_lead_time(at("2025-09-28T18:00:00+08:00"), at("2025-10-09T20:00:00+08:00"))
    assert lead.ok
    assert lead.deadline == dt.date(2025, 9, 28)
    assert lead.message == ("lead time met: plan submitted 2025-09-28, installation 2025-10-09, 3 working days needed "
                            "(submit by 2025-09-28)")


def test_a_day_late_names_the_deadline_and_the_earliest_installation():
    lead = check_lead_time(at("2025-09-29T09:00:00+08:00"), at("2025-10-09T20:00:00+08:00"))
    assert not lead.ok
    assert lead.earliest_install == dt.date(2025, 10, 10)
    assert lead.message == ("lead time not met (Art. 17): the plan was submitted 2025-09-29 but an installation on "
                            "2025-10-09 needs it by 2025-09-28 (3 working days before, make-up days counted): move the "
                            "installation to 2025-10-10 or later, or pass it as an emergency change")
    # the earliest date offered really is the first that passes
    assert check_lead_time(at("2025-09-29T09:00:00+08:00"), at("2025-10-10T09:00:00+08:00")).ok


def test_weekends_do_not_count():
    """Installation Monday 2026-03-09: three working days before is Wednesday 2026-03-04."""
    assert check_lead_time(at("2026-03-04T17:00:00+08:00"), at("2026-03-09T20:00:00+08:00")).ok
    late = check_lead_time(at("2026-03-05T08:00:00+08:00"), at("2026-03-09T20:00:00+08:00"))
    assert not late.ok and late.deadline == dt.date(2026, 3, 4) and late.earliest_install == dt.date(2026, 3, 10)


def test_dates_are_taken_in_the_policy_time_zone():
    """16:30 UTC on the 4th is already the 5th in Shanghai: too late there, in time in UTC."""
    submitted = dt.datetime(2026, 3, 4, 16, 30, tzinfo=UTC)
    install = at("2026-03-09T20:00:00+08:00")
    assert not check_lead_time(submitted, install).ok
    assert check_lead_time(submitted, install, tz="UTC").ok
    assert check_lead_time(submitted, install, tz=dt.timezone.utc).submitted == dt.date(2026, 3, 4)


def test_the_number_of_working_days_comes_from_the_policy():
    submitted, install = at("2026-03-05T08:00:00+08:00"), at("2026-03-09T20:00:00+08:00")
    assert check_lead_time(submitted, install, working_days=2).ok
    assert not check_lead_time(submitted, install, working_days=5).ok
    same_day = check_lead_time(install, install, working_days=0)
    assert same_day.ok and same_day.deadline == dt.date(2026, 3, 9)


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="naive datetime"):
        check_lead_time(dt.datetime(2026, 3, 4, 9, 0), at("2026-03-09T20:00:00+08:00"))


def test_an_installation_before_the_calendar_data_fails_closed():
    first = min(default_calendar().available_years())
    with pytest.raises(CalendarError):
        check_lead_time(dt.datetime(first, 1, 2, 9, 0, tzinfo=CST), dt.datetime(first, 1, 3, 9, 0, tzinfo=CST))


def test_no_earliest_date_past_the_calendar_data_is_said_not_invented():
    last = default_calendar().last_covered_date()
    lead = check_lead_time(dt.datetime(last.year, last.month, last.day, 9, 0, tzinfo=CST),
                           dt.datetime(last.year, last.month, last.day, 20, 0, tzinfo=CST))
    assert not lead.ok and lead.earliest_install is None
    assert "the earliest installation date is unknown" in lead.message
    assert lead.as_dict()["earliest_install_date"] is None


def test_as_dict_is_what_the_register_records():
    lead = check_lead_time(at("2026-03-04T17:00:00+08:00"), at("2026-03-09T20:00:00+08:00"), approval={"person": "henry"})
    assert lead.as_dict() == {"ok": True, "required_working_days": 3, "plan_submitted_on": "2026-03-04",
                              "install_date": "2026-03-09", "submit_by": "2026-03-04", "earliest_install_date": "2026-03-04",
                              "approval": {"person": "henry"}, "message": lead.message}


# ---- lead_time_from_approvals -------------------------------------------------------------------------

def test_the_plan_approval_gives_the_submission_and_the_planned_start():
    lead = lead_time_from_approvals([plan("2026-03-04T10:00:00+08:00", "2026-03-09T20:00:00+08:00")])
    assert lead.ok and lead.install_date == dt.date(2026, 3, 9)
    assert lead.approval == {"person": "henry", "role": "it_head", "issued_at": "2026-03-04T10:00:00+08:00"}


def test_the_earliest_plan_counts():
    approvals = [plan("2026-03-06T10:00:00+08:00", "2026-03-09T20:00:00+08:00", person="late"),
                 plan("2026-03-04T10:00:00+08:00", "2026-03-09T20:00:00+08:00", person="henry")]
    lead = lead_time_from_approvals(approvals)
    assert lead.ok and lead.approval["person"] == "henry"


def test_a_run_before_the_planned_start_is_measured_from_the_run():
    """Running early only had the lead time it really had."""
    approvals = [plan("2026-03-04T10:00:00+08:00", "2026-03-09T20:00:00+08:00")]
    lead = lead_time_from_approvals(approvals, at=at("2026-03-06T10:00:00+08:00"))
    assert not lead.ok and lead.install_date == dt.date(2026, 3, 6)


def test_a_run_after_the_planned_start_keeps_the_planned_date():
    approvals = [plan("2026-03-04T10:00:00+08:00", "2026-03-09T20:00:00+08:00")]
    assert lead_time_from_approvals(approvals, at=at("2026-03-12T10:00:00+08:00")).install_date == dt.date(2026, 3, 9)


def test_without_a_planned_start_the_run_is_the_installation():
    approvals = [plan("2026-03-04T10:00:00+08:00")]
    assert lead_time_from_approvals(approvals, at=at("2026-03-09T10:00:00+08:00")).ok
    with pytest.raises(ApprovalError, match="names no planned_start: sign the plan with .*--planned-start"):
        lead_time_from_approvals(approvals)


@pytest.mark.parametrize("approvals", [
    [],
    [plan("2026-03-04T10:00:00+08:00", "2026-03-09T20:00:00+08:00", decision="reject")],
    [plan("2026-03-04T10:00:00+08:00", "2026-03-09T20:00:00+08:00", stage="change_approval")],
])
def test_no_approved_plan_is_refused_with_the_command(approvals):
    with pytest.raises(ApprovalError, match=r"^no verified plan_submission approval: Art\. 17 .*prodgate approve --stage plan_submission"):
        lead_time_from_approvals(approvals, at=at("2026-03-09T10:00:00+08:00"))


def test_approval_objects_are_read_like_dicts():
    class Approval:  # the shape of approvals.Approval: attributes, aware datetimes
        stage, role, person, decision = "plan_submission", "it_head", "henry", "approve"
        issued_at = at("2026-03-04T10:00:00+08:00")
        planned_start = at("2026-03-09T20:00:00+08:00")
    assert lead_time_from_approvals([Approval()]).ok


@pytest.mark.parametrize("issued_at, message", [
    ("2026-03-04T10:00:00", "issued_at '2026-03-04T10:00:00' has no UTC offset"),
    ("4 March", "issued_at '4 March' is not an ISO 8601 date-time with offset"),
    (None, "issued_at is missing or not a date-time"),
])
def test_bad_times_in_an_approval_are_refused(issued_at, message):
    with pytest.raises(ApprovalError, match=message):
        lead_time_from_approvals([plan(issued_at, "2026-03-09T20:00:00+08:00")])
