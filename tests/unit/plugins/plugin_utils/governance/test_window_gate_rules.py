"""evaluate_change (governance/window_gate.py) over plain data: the freeze window, the lead time and the
emergency override decided together; the approvals as test_lead_time_rules.py builds them."""
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.window_gate import evaluate_change
from .test_lead_time_rules import EMERGENCY, TARGET, at, override, plan

RAW = {"freeze_windows": [{"name": "trading-sessions", "kind": "deny", "calendar": "trading_session"}]}


def test_open_and_lead_time_met():
    result = evaluate_change(RAW, "p.yml", TARGET, at("2025-10-09T08:00"), [plan("2025-09-28T10:00")], True, EMERGENCY)
    assert result["allowed"] and not result["override_used"] and result["lead_time"]["ok"]


def test_frozen_without_override_is_refused_with_the_window_message():
    result = evaluate_change(RAW, "p.yml", TARGET, at("2025-09-29T10:00"), [], False, EMERGENCY)
    assert not result["allowed"]
    expected = ("ta-core: frozen by deny window 'trading-sessions' until 2025-09-29 11:30 Asia/Shanghai; "
                "next open slot 2025-09-29 11:30 Asia/Shanghai; no emergency override")
    assert result["message"].startswith(expected)


def test_frozen_with_override_passes_and_says_so():
    result = evaluate_change(RAW, "p.yml", TARGET, at("2025-09-29T10:00"), [override()], False, EMERGENCY)
    assert result["allowed"] and result["override_used"] and result["frozen"]
    assert "EMERGENCY OVERRIDE" in result["message"] and "carol (coo): trade settlement bug" in result["message"]


def test_late_plan_is_waived_only_when_the_policy_waives_plan_submission():
    late = [plan("2025-09-29T08:00", planned="2025-09-30T20:00"), override()]
    ok = evaluate_change(RAW, "p.yml", TARGET, at("2025-09-29T20:00"), late, True, EMERGENCY)
    assert ok["allowed"] and ok["override_used"] and not ok["lead_time"]["ok"]
    strict = dict(EMERGENCY, waives=[])
    refused = evaluate_change(RAW, "p.yml", TARGET, at("2025-09-29T20:00"), late, True, strict)
    assert not refused["allowed"] and "does not waive the plan lead time" in refused["message"]


def test_lead_time_disabled_by_policy_zero():
    raw = dict(RAW, lead_time_working_days=0)
    assert evaluate_change(raw, "p.yml", TARGET, at("2025-10-09T08:00"), [], True, EMERGENCY)["allowed"]
