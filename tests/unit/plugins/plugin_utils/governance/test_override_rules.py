"""The emergency override (governance/override.py): authorisers, a reason, a validity window, distinct
people for the threshold. Pure rules over plain data; the approvals as test_lead_time_rules.py builds them."""
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.override import check_emergency_override
from .test_lead_time_rules import at, override


def test_override_needs_authoriser_reason_and_validity():
    now = at("2025-09-29T10:00")
    assert check_emergency_override([override()], ["coo", "president_office"], 1, now).ok
    assert not check_emergency_override([], ["coo"], 1, now).ok
    no_reason = check_emergency_override([override(reason=" ")], ["coo"], 1, now)
    assert not no_reason.ok and "carol (coo) gave no reason" in no_reason.message
    wrong_role = check_emergency_override([override(role="it_head")], ["coo"], 1, now)
    assert "may not authorise overrides" in wrong_role.message
    expired = check_emergency_override([override()], ["coo"], 1, at("2025-09-30T00:00"))
    assert not expired.ok and "is not valid at" in expired.message
    assert not check_emergency_override([override()], [], 1, now).ok


def test_override_threshold_counts_distinct_people():
    now = at("2025-09-29T10:00")
    twice = [override(), override(reason="again")]
    assert not check_emergency_override(twice, ["coo", "president_office"], 2, now).ok
    two = [override(), override(person="pat", role="president_office")]
    result = check_emergency_override(two, ["coo", "president_office"], 2, now)
    assert result.ok and [u["person"] for u in result.used] == ["carol", "pat"]
