"""Break-glass (issue 11, Deliver 6): the policy section, the gate's check with the supervisor's and
one implementer's acknowledgements only, the retrospective approval and its working-day deadline,
and the audit of open and overdue break-glass changes. Real keys and signatures (tests/approval_world.py)."""
import dataclasses
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import break_glass  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError, PolicyError  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.calendar import default_calendar  # noqa: E402

CST = timezone(timedelta(hours=8))
SECTION = {"roles_retrospective": ["it_head", "coo"], "deadline_working_days": 2}


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


def policy_with(world, section="default"):
    """The world's signed policy as loaded, with a break_glass section (the schema wiring is the policy loader's)."""
    section = SECTION if section == "default" else section
    pol = world.policy()
    raw = dict(pol.raw)
    if section is not None:
        raw["break_glass"] = section
    return dataclasses.replace(pol, raw=raw)


def binding(world, **over):
    b = world.binding(change_type="non_routine", version=None, artifacts=[], implementers=["ivan"], supervisor="sam",
                      launcher="ivan.w")
    b.update(over)
    return b


def acks(world, b, implementer="ivan", supervisor="sam"):
    out = []
    if implementer:
        out.append(world.approve("implementer_ack", "it_ops", implementer, b))
    if supervisor:
        out.append(world.approve("supervisor_ack", "ops_supervisor", supervisor, b))
    return out


# ---- the policy section ---------------------------------------------------------------------

def test_section_parses_and_absent_section_means_no_break_glass():
    assert break_glass.parse_rule(SECTION) == break_glass.BreakGlassRule(("it_head", "coo"), 2)
    assert break_glass.parse_rule(None) is None


@pytest.mark.parametrize("section, message", [
    ([], "must be a mapping"),
    ({"roles_retrospective": ["it_head"], "deadline_working_days": 2, "deadline": 3}, "unknown key(s) ['deadline']"),
    ({"roles_retrospective": [], "deadline_working_days": 2}, "a non-empty list of role ids"),
    ({"roles_retrospective": ["coo", "coo"], "deadline_working_days": 2}, "lists a role twice"),
    ({"roles_retrospective": ["ops_supervisor"], "deadline_working_days": 2}, "cannot approve it afterwards"),
    ({"roles_retrospective": ["it_head"], "deadline_working_days": 0}, "from 1 to 30"),
    ({"roles_retrospective": ["it_head"], "deadline_working_days": True}, "from 1 to 30"),
    ({"roles_retrospective": ["it_head"], "deadline_working_days": 10 ** 9}, "from 1 to 30"),
])
def test_bad_section_is_a_schema_error_naming_the_path(section, message):
    with pytest.raises(PolicyError) as exc:
        break_glass.parse_rule(section)
    assert "policy break_glass" in str(exc.value) and message in str(exc.value)


def test_unknown_retrospective_role_is_refused():
    with pytest.raises(PolicyError, match=r"unknown role\(s\) \['cfo'\]"):
        break_glass.parse_rule({"roles_retrospective": ["cfo"], "deadline_working_days": 2}, known_roles={"coo": {}})


def test_policy_without_the_section_refuses_break_glass(world):
    report = break_glass.verify_break_glass(policy_with(world, None), acks(world, binding(world)), binding(world))
    assert not report.ok
    assert "break-glass is not allowed by policy" in report.problems[0] and "emergency_override" in report.problems[0]


# ---- the gate in break-glass mode -------------------------------------------------------------

def test_supervisor_and_one_implementer_pass_in_production(world):
    b = binding(world)
    report = break_glass.verify_break_glass(policy_with(world), acks(world, b), b)
    assert report.problems == []
    assert report.implementers == ["ivan"] and report.supervisor == "sam" and report.launcher == "ivan"
    assert sorted((a.stage, a.person) for a in report.counted) == [("implementer_ack", "ivan"), ("supervisor_ack", "sam")]


def test_decision_says_break_glass_and_when_the_retrospective_approval_is_due(world):
    b = binding(world)
    pol = policy_with(world)
    report = break_glass.verify_break_glass(pol, acks(world, b), b)
    started = datetime(2025, 9, 26, 22, 0, tzinfo=CST)   # a Friday night before the National Day holiday
    out = break_glass.decision(pol, report, b, break_glass.rule_of(pol), started)
    assert out["break_glass"] is True and out["performed_stage"] == "break_glass"
    assert out["pending_stages"] == [{"stage": "retrospective_approval", "roles": ["it_head", "coo"]}]
    # 2025-09-28 (Sunday) is a make-up working day, 2025-09-29 the next: due before 2025-09-30 00:00
    assert out["retrospective_due"] == "2025-09-30T00:00:00+08:00"
    assert {a["nonce"] for a in out["approvals"]} == {a.nonce for a in report.counted}


@pytest.mark.parametrize("missing, message", [
    ("implementer", "needs an implementer's signed acknowledgement by one of the declared implementers ['ivan']"),
    ("supervisor", "needs the on-site operations supervisor's signed acknowledgement (sam, prodgate_supervisor)"),
])
def test_each_acknowledgement_is_required(world, missing, message):
    b = binding(world)
    envs = acks(world, b, **{missing: None})
    report = break_glass.verify_break_glass(policy_with(world), envs, b)
    assert any(message in p for p in report.problems), report.problems


def test_other_approvals_do_not_replace_an_acknowledgement(world):
    """An emergency override or the IT head's approval is not an acknowledgement of the people on site."""
    b = binding(world)
    envs = [world.approve("change_approval", "it_head", "henry", b),
            world.approve("supervisor_ack", "ops_supervisor", "sam", b)]
    report = break_glass.verify_break_glass(policy_with(world), envs, b)
    assert not report.ok and "implementer's signed acknowledgement" in " ".join(report.problems)
    assert [a.stage for a in report.ignored] == ["change_approval"]


def test_acknowledgement_of_another_change_is_refused(world):
    b = binding(world)
    other = binding(world, change_id="CHG-OTHER")
    report = break_glass.verify_break_glass(policy_with(world), acks(world, other), b)
    assert not report.ok
    assert any("approves change_id 'CHG-OTHER' but this run is change_id 'CHG-1001'" in p for p in report.problems)


def test_launcher_must_be_the_implementer_on_site(world):
    b = binding(world, launcher="jane.l")
    report = break_glass.verify_break_glass(policy_with(world), acks(world, b), b)
    assert any("launcher jane.l is not the implementer who acknowledged" in p for p in report.problems), report.problems


def test_consumed_acknowledgements_cannot_be_replayed(world, tmp_path):
    b = binding(world)
    envs = acks(world, b)
    with Ledger.open(str(tmp_path / "register.db")) as ledger:
        report = break_glass.verify_break_glass(policy_with(world), envs, b, ledger=ledger)
        assert report.ok
        ledger.consume([a.nonce for a in report.counted], b["change_id"])
        again = break_glass.verify_break_glass(policy_with(world), envs, b, ledger=ledger)
    assert not again.ok and any("replay refused" in p for p in again.problems), again.problems


# ---- retrospective approval and audit ------------------------------------------------------------

def recorded(b, started):
    return dict(b, started_at=started.isoformat(), implementers=["ivan"], supervisor="sam")


def retro(world, b, role, person, issued):
    return world.approve("retrospective_approval", role, person, b, issued_at=issued,
                         not_before=issued - timedelta(minutes=1), not_after=issued + timedelta(days=3))


def test_retrospective_approval_by_every_named_role_closes_the_change(world):
    b = binding(world)
    started = world.now - timedelta(hours=2)
    envs = [retro(world, b, "it_head", "henry", world.now - timedelta(hours=1)),
            retro(world, b, "coo", "carol", world.now - timedelta(minutes=30))]
    report = break_glass.verify_retrospective(policy_with(world), envs, recorded(b, started))
    assert report.problems == [] and report.complete
    assert report.signed_roles == {"it_head": "henry", "coo": "carol"}


def test_retrospective_approval_before_the_change_or_by_someone_on_site_does_not_count(world):
    b = binding(world)
    started = world.now - timedelta(hours=2)
    envs = [retro(world, b, "it_head", "henry", started - timedelta(hours=1)),
            retro(world, b, "coo", "carol", world.now - timedelta(minutes=30))]
    change = recorded(b, started)
    change["supervisor"] = "carol"   # carol was on site: she cannot approve her own emergency afterwards
    report = break_glass.verify_retrospective(policy_with(world), envs, change)
    assert report.missing_roles == ["it_head", "coo"]
    text = "\n".join(report.problems)
    assert "before the change started" in text and "carol was on site for the change" in text


def test_retrospective_approval_by_a_role_the_policy_does_not_name_is_refused(world):
    b = binding(world)
    envs = [retro(world, b, "risk_compliance", "rita", world.now - timedelta(minutes=5))]
    report = break_glass.verify_retrospective(policy_with(world), envs, recorded(b, world.now - timedelta(hours=1)))
    assert report.missing_roles == ["it_head", "coo"]
    assert any("role risk_compliance does not sign stage retrospective_approval" in p for p in report.problems)


def test_audit_reports_open_overdue_and_closed_changes():
    rule = break_glass.BreakGlassRule(("it_head", "coo"), 2)
    cal = default_calendar()
    friday = datetime(2025, 9, 26, 22, 0, tzinfo=CST)
    changes = [
        {"change_id": "BG-OPEN", "started_at": friday.isoformat(), "retrospective": []},
        {"change_id": "BG-LATE", "started_at": friday.isoformat(),
         "retrospective": [{"role": "it_head", "person": "henry", "issued_at": "2025-09-28T10:00:00+08:00"}]},
        {"change_id": "BG-DONE", "started_at": friday.isoformat(),
         "retrospective": [{"role": "it_head", "person": "henry", "issued_at": "2025-09-28T10:00:00+08:00"},
                           {"role": "coo", "person": "carol", "issued_at": "2025-09-30T09:00:00+08:00"}]},
    ]
    before = {f["change_id"]: f for f in break_glass.audit(rule, changes, now=datetime(2025, 9, 29, 12, 0, tzinfo=CST), calendar=cal)}
    assert before["BG-OPEN"]["status"] == "open" and before["BG-OPEN"]["missing_roles"] == ["it_head", "coo"]
    after = {f["change_id"]: f for f in break_glass.audit(rule, changes, now=datetime(2025, 9, 30, 0, 0, tzinfo=CST), calendar=cal)}
    assert after["BG-OPEN"]["status"] == "OVERDUE"
    assert after["BG-LATE"]["status"] == "OVERDUE" and after["BG-LATE"]["missing_roles"] == ["coo"]
    assert after["BG-DONE"]["status"] == "closed" and after["BG-DONE"]["late"] is True
    assert after["BG-DONE"]["due"] == "2025-09-30T00:00:00+08:00"


def test_deadline_counts_working_days_not_calendar_days():
    rule = break_glass.BreakGlassRule(("it_head",), 1)
    # Tuesday 2025-09-30 before the National Day holiday (Oct 1-8): the next working day is Oct 9
    due = break_glass.retrospective_deadline(datetime(2025, 9, 30, 9, 0, tzinfo=CST), rule, default_calendar())
    assert due.date() == date(2025, 10, 10)


def test_rule_of_a_policy_with_the_section(world):
    assert break_glass.rule_of(policy_with(world)).deadline_working_days == 2
    with pytest.raises(ApprovalError):
        break_glass.rule_of(policy_with(world, None))
