"""governance/override.py, Art. 24: the only way through a freeze is a signed emergency override by
enough distinct people holding a role the policy names, each with a reason, valid at the time of
the change. There is no other bypass."""
import datetime as dt

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.override import check_emergency_override

CST = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 3, 4, 10, 0, tzinfo=CST)
ROLES = ("coo", "president_office")


def override(person, role="coo", reason="payment outage hot fix", **kw):
    item = {"stage": "emergency_override", "role": role, "person": person, "reason": reason, "decision": "approve",
            "issued_at": NOW - dt.timedelta(hours=1)}
    item.update(kw)
    return item


def test_one_authoriser_with_a_reason_is_enough_by_default():
    result = check_emergency_override([override("carol")], ROLES)
    assert result.ok
    assert result.message == "emergency override used: carol (coo): payment outage hot fix"
    assert result.used == [{"role": "coo", "person": "carol", "reason": "payment outage hot fix",
                            "issued_at": (NOW - dt.timedelta(hours=1)).isoformat(), "not_after": None}]


def test_threshold_counts_distinct_people():
    two = [override("carol"), override("pam", role="president_office", reason="regulator deadline")]
    assert check_emergency_override(two, ROLES, threshold=2).ok
    same_person_twice = [override("carol"), override("carol", reason="again")]
    result = check_emergency_override(same_person_twice, ROLES, threshold=2)
    assert not result.ok
    assert result.message.startswith("no emergency override: it needs 2 signed emergency_override approval(s) with a "
                                     "reason from ['coo', 'president_office'], found 1")
    assert result.message.endswith("sign with `prodgate approve --stage emergency_override --reason ...`")
    assert len(result.used) == 1


@pytest.mark.parametrize("reason", [None, "", "   ", 42])
def test_a_reason_is_required(reason):
    result = check_emergency_override([override("carol", reason=reason)], ROLES)
    assert not result.ok
    assert "found 0; not counted: carol (coo) gave no reason" in result.message


def test_a_role_the_policy_does_not_name_does_not_count():
    result = check_emergency_override([override("ivan", role="it_ops")], ROLES)
    assert not result.ok
    assert "not counted: ivan signed as it_ops, which may not authorise overrides" in result.message


def test_other_stages_and_rejections_are_not_overrides():
    items = [dict(override("henry", role="coo"), stage="change_approval"), override("carol", decision="reject")]
    result = check_emergency_override(items, ROLES)
    assert not result.ok and "found 0;" in result.message and "not counted" not in result.message


@pytest.mark.parametrize("bounds, valid", [
    ({"not_before": NOW - dt.timedelta(minutes=1), "not_after": NOW + dt.timedelta(hours=4)}, True),
    ({"not_before": NOW, "not_after": NOW + dt.timedelta(hours=4)}, True),          # from not_before inclusive
    ({"not_before": NOW + dt.timedelta(minutes=1)}, False),                          # not yet valid
    ({"not_after": NOW}, False),                                                     # until not_after exclusive
    ({"not_after": NOW - dt.timedelta(hours=1)}, False),                             # expired
    ({"not_before": "2026-03-04T09:00:00+08:00", "not_after": "2026-03-04T11:00:00+08:00"}, True),
    ({"not_before": "2026-03-04T02:30:00+00:00"}, False),                            # 10:30 in Shanghai
])
def test_validity_window_at_the_time_of_the_change(bounds, valid):
    result = check_emergency_override([override("carol", **bounds)], ROLES, at=NOW)
    assert result.ok is valid
    if not valid:
        assert f"carol (coo) is not valid at {NOW.isoformat()}" in result.message


def test_validity_is_not_checked_without_a_time():
    assert check_emergency_override([override("carol", not_after=NOW - dt.timedelta(days=1))], ROLES).ok


@pytest.mark.parametrize("roles, threshold", [((), 1), (None, 1), (ROLES, 0), (ROLES, None)])
def test_a_policy_without_authorisers_allows_no_override(roles, threshold):
    result = check_emergency_override([override("carol")], roles, threshold=threshold)
    assert not result.ok
    assert result.message == ("the policy names no role that may authorise an emergency override "
                              "(emergency.authorisers): wait for the next open slot")


def test_counted_and_refused_signers_are_both_reported():
    items = [override("carol"), override("ivan", role="it_ops"), override("pam", role="president_office", reason=" ")]
    result = check_emergency_override(items, ROLES, threshold=2)
    assert not result.ok
    assert "found 1; not counted: ivan signed as it_ops, which may not authorise overrides; pam (president_office) gave no reason" \
        in result.message
    assert result.as_dict()["authorisers"] == list(ROLES) and result.as_dict()["threshold"] == 2


def test_the_reason_is_recorded_trimmed():
    result = check_emergency_override([override("carol", reason="  core down  ", not_after=NOW + dt.timedelta(hours=2))], ROLES)
    assert result.used[0]["reason"] == "core down"
    assert result.used[0]["not_after"] == (NOW + dt.timedelta(hours=2)).isoformat()
