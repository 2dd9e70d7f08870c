"""Art. 17 lead time in working days (governance/lead_time.py): pure rules over plain data. The override's
rules are in test_override_rules.py, evaluate_change's in test_window_gate_rules.py; both use the
approvals built here (plan, override)."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.calendar import default_calendar
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.lead_time import check_lead_time, lead_time_from_approvals
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.windows import Target

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
CAL = default_calendar()
TARGET = Target("ta-core", "core_business", "production", "version_update")
EMERGENCY = {"authorisers": ["coo", "president_office"], "threshold": 1, "waives": ["plan_submission"]}


def at(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def plan(issued, planned="2025-10-09T09:00", person="hugo", decision="approve"):
    return {"stage": "plan_submission", "role": "it_head", "person": person, "issued_at": at(issued),
            "planned_start": at(planned) if planned else None, "decision": decision}


def override(person="carol", role="coo", reason="trade settlement bug, fix tested", nb="2025-09-29T00:00", na="2025-09-30T00:00"):
    return {"stage": "emergency_override", "role": role, "person": person, "reason": reason,
            "issued_at": at(nb), "not_before": at(nb), "not_after": at(na), "decision": "approve"}


# --- lead time ---------------------------------------------------------------------------------
def test_plan_on_the_makeup_sunday_is_exactly_in_time():
    lead = check_lead_time(at("2025-09-28T23:59"), at("2025-10-09T09:00"))
    assert lead.ok and lead.deadline == dt.date(2025, 9, 28)


def test_plan_one_working_day_late_is_refused_with_the_fix():
    lead = check_lead_time(at("2025-09-29T08:00"), at("2025-10-09T09:00"))
    assert not lead.ok
    assert "needs it by 2025-09-28" in lead.message and "move the installation to 2025-10-10 or later" in lead.message
    assert check_lead_time(at("2025-09-29T08:00"), at("2025-10-10T00:00")).ok     # the suggested date works


def test_earliest_date_beyond_the_data_is_reported_not_guessed():
    lead = check_lead_time(at("2026-12-30T10:00"), at("2026-12-31T09:00"), 3)
    assert not lead.ok and lead.earliest_install is None and "calendar has no data for 2027" in lead.message


def test_lead_time_counts_in_shanghai_dates_even_from_utc():
    # 2025-09-28 16:30 UTC is already 2025-09-29 00:30 in Shanghai: one day too late.
    assert not check_lead_time(dt.datetime(2025, 9, 28, 16, 30, tzinfo=UTC), at("2025-10-09T09:00")).ok
    assert check_lead_time(dt.datetime(2025, 9, 28, 15, 59, tzinfo=UTC), at("2025-10-09T09:00")).ok


@settings(max_examples=200, deadline=None)
# From February 2024: ten working days back stay inside the shipped data (2023 fails closed).
@given(st.dates(dt.date(2024, 2, 1), dt.date(2026, 12, 20)), st.integers(0, 10), st.integers(-5, 25))
def test_lead_time_property(install, days, offset):
    submitted = install - dt.timedelta(days=offset)
    lead = check_lead_time(dt.datetime.combine(submitted, dt.time(12), SH), dt.datetime.combine(install, dt.time(9), SH), days)
    # Independent count: working days strictly after the submission day and before the installation
    # day, plus the submission day itself when it is a working day, must reach ``days``; a plan
    # signed after the installation day never counts.
    count = sum(1 for i in range(0, (install - submitted).days) if CAL.is_working_day(submitted + dt.timedelta(days=i)))
    assert lead.ok == (submitted <= install and count >= days)
    if not lead.ok and lead.earliest_install is not None:
        assert check_lead_time(dt.datetime.combine(submitted, dt.time(12), SH),
                               dt.datetime.combine(lead.earliest_install, dt.time(9), SH), days).ok
        assert not check_lead_time(dt.datetime.combine(submitted, dt.time(12), SH),
                                   dt.datetime.combine(lead.earliest_install - dt.timedelta(days=1), dt.time(9), SH), days).ok


def test_lead_time_from_approvals_uses_the_earliest_plan_and_the_earlier_of_planned_start_and_now():
    approvals = [plan("2025-09-30T10:00"), plan("2025-09-26T10:00", person="hugo2"), override()]
    lead = lead_time_from_approvals(approvals, at("2025-10-09T10:00"))
    assert lead.ok and lead.approval["person"] == "hugo2"
    # Run on 29 Sep, before the planned start: 3 working days before it are 28 (make-up), 26, 25 Sep.
    early = lead_time_from_approvals([plan("2025-09-26T10:00")], at("2025-09-29T10:00"))
    assert not early.ok and early.install_date == dt.date(2025, 9, 29) and early.deadline == dt.date(2025, 9, 25)
    with pytest.raises(ApprovalError, match="no verified plan_submission approval"):
        lead_time_from_approvals([plan("2025-09-26T10:00", decision="reject")], at("2025-10-09T10:00"))
