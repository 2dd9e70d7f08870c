"""governance/window_gate.py: the change_window decision, as the action plugin takes it, from the
controller's trusted settings (a real controller.yml, a pinned root, a signed policy) and a change
built the way every adapter builds it. No variable or option moves a production change out of a
freeze; break-glass lets a change through but keeps the decision it overrode."""
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import ARTIFACT, CST, World, now as world_now  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError, TrustError  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import window_gate  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.change import build_change  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import open_trusted  # noqa: E402

FREEZE = {"name": "march-release-freeze", "kind": "deny", "start": "2026-03-02T00:00", "end": "2026-03-06T00:00",
          "reason": "quarter-end reporting"}
BREAK_GLASS = {"roles_retrospective": ["it_head", "coo"], "deadline_working_days": 2}
IN_FREEZE = datetime(2026, 3, 4, 10, 0, tzinfo=CST)      # a Wednesday inside the freeze
AFTER_FREEZE = datetime(2026, 3, 7, 10, 0, tzinfo=CST)   # the Saturday after it


def make_world(path, windows=(FREEZE,), break_glass=True, **over):
    overrides = {"freeze_windows": [dict(w) for w in windows], "version": over.pop("version", 4)}
    if break_glass:
        overrides["break_glass"] = dict(BREAK_GLASS)
    overrides.update(over)
    return World(path, overrides=overrides)


def trusted_for(world, environment, **controller):
    config = world.controller(**controller)
    return open_trusted(environment=environment, environ={"PRODGATE_CONTROLLER_CONFIG": str(config)})


def change(environment="production", change_type="routine", **options):
    opts = {"change_id": "CHG-2001", "change_type": change_type, "system": "ta-core", "environment": environment,
            "version": "3.2.1", "artifacts": [ARTIFACT]}
    opts.update(options)
    return build_change(opts, {"ansible_play_hosts_all": ["app1", "app2"]})


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return make_world(tmp_path)


# ---- a frozen change ------------------------------------------------------------------------------

def test_a_frozen_change_is_refused_naming_the_window(world):
    with trusted_for(world, "production") as trusted:
        decision = window_gate.decide(trusted, change(), now=IN_FREEZE)
    assert decision["allowed"] is False and decision["frozen"] is True and decision["override_used"] is False
    assert decision["window"]["decided_by"] == ["march-release-freeze"]
    assert decision["message"].startswith("ta-core: frozen by deny window 'march-release-freeze' until 2026-03-06 00:00 "
                                          "Asia/Shanghai; next open slot 2026-03-06 00:00 Asia/Shanghai; ")
    assert "no emergency override: it needs 1 signed emergency_override approval(s)" in decision["message"]
    assert decision["evaluated_at"] == "2026-03-04T10:00:00+08:00"
    assert decision["clock"] == "system" and decision["targets"] == ["app1", "app2"]


def test_the_same_change_after_the_freeze_is_allowed(world):
    with trusted_for(world, "production") as trusted:
        decision = window_gate.decide(trusted, change(), now=AFTER_FREEZE)
    assert decision["allowed"] is True and decision["frozen"] is False
    assert decision["message"].startswith("ta-core: open (no window applies)")


def test_the_policy_version_is_in_the_decision(tmp_path):
    world = make_world(tmp_path, version=7)
    with trusted_for(world, "production") as trusted:
        decision = window_gate.decide(trusted, change(), now=AFTER_FREEZE)
    assert decision["policy_version"] == 7


def test_a_window_for_other_systems_does_not_freeze_this_one(tmp_path):
    world = make_world(tmp_path, windows=[dict(FREEZE, systems=["crm"])])
    with trusted_for(world, "production") as trusted:
        decision = window_gate.decide(trusted, change(), now=IN_FREEZE)
    assert decision["allowed"] is True and decision["windows_applying"] == []


# ---- the test clock ------------------------------------------------------------------------------

def test_a_test_clock_is_refused_in_production(world):
    """Even when the administrator lists test environments, production never takes a test clock."""
    with trusted_for(world, "production", test_clock_environments=["staging"]) as trusted:
        with pytest.raises(TrustError) as exc:
            window_gate.decide(trusted, change(), test_now="2026-03-07T10:00")
    message = str(exc.value)
    assert message.startswith("option `now` sets a test clock, which environment production does not allow")
    assert "test_clock_environments" in message and "never in production; remove `now`" in message


def test_a_test_clock_is_refused_where_the_administrator_did_not_list_it(world):
    with trusted_for(world, "staging") as trusted:
        with pytest.raises(TrustError, match="environment staging does not allow: .*test_clock_environments"):
            window_gate.decide(trusted, change("staging"), test_now="2026-03-07T10:00")


def test_a_listed_environment_takes_the_test_clock_in_the_policy_zone(world):
    with trusted_for(world, "staging", test_clock_environments=["staging"]) as trusted:
        frozen = window_gate.decide(trusted, change("staging"), test_now="2026-03-04T10:00")
        open_ = window_gate.decide(trusted, change("staging"), test_now="2026-03-07T10:00+08:00")
    assert frozen["clock"] == "test" and frozen["evaluated_at"] == "2026-03-04T10:00:00+08:00"
    assert frozen["allowed"] is False and "'march-release-freeze'" in frozen["message"]
    assert open_["clock"] == "test" and open_["allowed"] is True


def test_a_bad_test_clock_names_the_option(world):
    with trusted_for(world, "staging", test_clock_environments=["staging"]) as trusted:
        with pytest.raises(Exception, match=r"^now: 'next friday' is not an ISO 8601 date-time"):
            window_gate.decide(trusted, change("staging"), test_now="next friday")


# ---- break-glass -----------------------------------------------------------------------------------

def test_break_glass_lets_a_frozen_change_through_and_keeps_the_refusal(world):
    with trusted_for(world, "production") as trusted:
        refused = window_gate.decide(trusted, change(), now=IN_FREEZE)
        passed = window_gate.decide(trusted, change(), now=IN_FREEZE, break_glass_mode=True)
    assert refused["allowed"] is False
    assert passed["allowed"] is True and passed["break_glass"] is True
    assert passed["overridden_by"] == "break_glass"
    assert passed["message"] == f"BREAK-GLASS overrides: {refused['message']}"
    assert passed["frozen"] is True and passed["window"]["decided_by"] == ["march-release-freeze"]


def test_break_glass_on_an_open_change_overrides_nothing(world):
    with trusted_for(world, "production") as trusted:
        decision = window_gate.decide(trusted, change(), now=AFTER_FREEZE, break_glass_mode=True)
    assert decision["allowed"] is True and decision["break_glass"] is True
    assert "overridden_by" not in decision and not decision["message"].startswith("BREAK-GLASS")


def test_break_glass_needs_the_signed_policy_to_allow_it(tmp_path):
    world = make_world(tmp_path, break_glass=False)
    with trusted_for(world, "production") as trusted:
        with pytest.raises(ApprovalError, match="break-glass is not allowed by policy .* \\(version 4\\): it has no `break_glass` section"):
            window_gate.decide(trusted, change(), now=IN_FREEZE, break_glass_mode=True)


# ---- the signed emergency override and the lead time (real time: approvals are valid now) --------------

def around_now():
    moment = world_now()
    return dict(FREEZE, start=(moment - timedelta(days=1)).isoformat(), end=(moment + timedelta(days=1)).isoformat())


def test_a_signed_emergency_override_opens_a_freeze(tmp_path):
    world = make_world(tmp_path, windows=[around_now()])
    binding = world.binding(change_id="CHG-2001", change_type="routine")
    override = world.approve("emergency_override", "coo", "carol", binding, reason="payment outage hot fix",
                             not_before=world.now - timedelta(hours=1), not_after=world.now + timedelta(hours=4),
                             issued_at=world.now - timedelta(hours=1))
    evidence = world.write_evidence([override])
    with trusted_for(world, "production") as trusted:
        without = window_gate.decide(trusted, change())
        decision = window_gate.decide(trusted, change(evidence=evidence))
    assert without["allowed"] is False
    assert decision["allowed"] is True and decision["override_used"] is True
    assert decision["message"].startswith("ta-core: EMERGENCY OVERRIDE for: frozen by deny window 'march-release-freeze'")
    assert decision["message"].endswith("emergency override used: carol (coo): payment outage hot fix")


def test_an_override_signed_by_a_role_that_may_not_authorise_is_refused(tmp_path):
    world = make_world(tmp_path, windows=[around_now()])
    binding = world.binding(change_id="CHG-2001", change_type="routine")
    wrong = world.approve("emergency_override", "it_head", "henry", binding, reason="hot fix",
                          not_before=world.now - timedelta(hours=1), not_after=world.now + timedelta(hours=4))
    with trusted_for(world, "production") as trusted:
        decision = window_gate.decide(trusted, change(evidence=world.write_evidence([wrong])))
    assert decision["allowed"] is False and decision["override_used"] is False
    assert decision["message"].endswith("evidence problems: evidence 000.json (emergency_override by henry as it_head): "
                                        "role it_head does not sign stage emergency_override (it is signed by "
                                        "['coo', 'president_office'])")


def test_a_change_that_needs_a_plan_is_refused_without_one(tmp_path):
    world = make_world(tmp_path, windows=())
    with trusted_for(world, "production") as trusted:
        decision = window_gate.decide(trusted, change(change_type="version_update"), now=AFTER_FREEZE)
    assert decision["allowed"] is False and decision["frozen"] is False
    assert decision["lead_time"]["ok"] is False
    assert "no verified plan_submission approval: Art. 17" in decision["message"]


def test_warnings_of_the_trust_settings_reach_the_decision(tmp_path):
    world = make_world(tmp_path)
    with trusted_for(world, "staging", pinned=False) as trusted:
        decision = window_gate.decide(trusted, change("staging"), now=AFTER_FREEZE)
    assert any("is not pinned to a governance root (allowed only outside production)" in w for w in decision["warnings"])
