"""register_audit: UNGATED production runs and break-glass findings from the register's entries."""
from datetime import datetime, timedelta, timezone

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.audit import audit, gate_status  # noqa: E402

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def run(run_id, change_id, environment="production", changed=1, check_mode=False):
    entries = [{"kind": "run_open", "run": run_id, "ts": "2026-11-30T01:00:00+00:00", "check_mode": check_mode,
                "change": {"id": change_id, "environment": environment}}]
    entries += [{"kind": "outcome", "run": run_id, "status": "ok", "changed": True, "check_mode": check_mode,
                 "host": f"h{i}", "task": "t"} for i in range(changed)]
    return entries


def close(run_id):
    return [{"kind": "run_close", "run": run_id}]


def decision(change_id, **extra):
    return [dict({"kind": "gate_decision", "change_id": change_id, "consumed": True}, **extra)]


def numbered(*groups):
    return list(enumerate([e for g in groups for e in g], start=1))


def test_a_production_run_that_changed_hosts_without_a_gate_decision_is_ungated():
    entries = numbered(run("r1", "CHG-1", changed=3), close("r1"),
                       run("r2", "CHG-2"), decision("CHG-2"), close("r2"),            # gated
                       run("r3", "CHG-3", environment="staging"), close("r3"),       # not production
                       run("r4", "CHG-4", check_mode=True), close("r4"),             # a rehearsal changes nothing
                       run("r5", "CHG-5"), decision("CHG-5", rehearsal=True), close("r5"))  # a rehearsal's decision is no gate
    found = audit(entries, now=NOW)
    assert [(u["change_id"], u["changed_tasks"], u["first_change"]["host"]) for u in found["ungated"]] == \
        [("CHG-1", 3, "h0"), ("CHG-5", 1, "h0")]
    assert gate_status(entries, "CHG-2", now=NOW)["status"] == "gated"
    assert gate_status(entries, "CHG-1", now=NOW)["status"] == "UNGATED"


def test_a_decision_outside_the_run_does_not_gate_it():
    """Attack review: an earlier run's decision for the same change id hid later runs without a gate."""
    assert audit(numbered(run("r1", "CHG-1"), close("r1"), decision("CHG-1")), now=NOW)["ungated"][0]["change_id"] == "CHG-1"
    later = audit(numbered(run("r1", "CHG-1"), decision("CHG-1"), close("r1"), run("r2", "CHG-1"), close("r2")), now=NOW)
    assert [u["run"] for u in later["ungated"]] == ["r2"]


def test_a_real_change_inside_a_rehearsal_is_audited():
    """Attack review: a `check_mode: false` task in a --check run changed hosts and the audit skipped the run."""
    entries = run("r1", "CHG-1", changed=0, check_mode=True)
    entries.append({"kind": "outcome", "run": "r1", "status": "ok", "changed": True, "check_mode": False, "host": "h9", "task": "t"})
    assert audit(numbered(entries, close("r1")), now=NOW)["ungated"][0]["first_change"]["host"] == "h9"


def test_break_glass_is_open_then_overdue_then_closed_by_signed_retrospective_approvals(tmp_path):
    world = World(tmp_path, overrides={"break_glass": {"roles_retrospective": ["it_head", "coo"], "deadline_working_days": 2}})
    policy = world.policy()
    binding = world.binding(change_id="CHG-BG", artifacts=[])
    started = world.now - timedelta(days=3)
    due = (NOW + timedelta(days=1)).isoformat()
    fields = {k: binding[k] for k in ("system", "environment", "change_type", "version", "targets")}
    glass = decision("CHG-BG", break_glass=True, retrospective_roles=["it_head", "coo"], retrospective_due=due,
                     ts=started.isoformat(), **fields)
    entries = numbered(run("r1", "CHG-BG"), glass, close("r1"))
    assert gate_status(entries, "CHG-BG", policy=policy, now=NOW)["status"] == "BREAK-GLASS open"
    late = audit(entries, policy=policy, now=NOW + timedelta(days=2))["break_glass"][0]
    assert late["status"] == "OVERDUE" and late["missing_roles"] == ["it_head", "coo"]
    envelopes = [world.approve("retrospective_approval", "it_head", "henry", binding),
                 world.approve("retrospective_approval", "coo", "carol", binding, offset_minutes=5)]
    retro = [{"kind": "retrospective_approval", "change_id": "CHG-BG", "ts": world.now.isoformat(), "envelopes": envelopes}]
    closed = audit(numbered(run("r1", "CHG-BG"), glass, close("r1"), retro), policy=policy, now=NOW)["break_glass"][0]
    assert closed["status"] == "closed" and closed["signed"] == {"it_head": "henry", "coo": "carol"}


def test_a_retrospective_approval_written_into_the_register_without_a_signature_does_not_close_it(tmp_path):
    """Attack review: a plain retrospective_approval row closed an overdue break-glass change."""
    world = World(tmp_path, overrides={"break_glass": {"roles_retrospective": ["it_head"], "deadline_working_days": 2}})
    glass = decision("CHG-BG", break_glass=True, retrospective_roles=["it_head"], retrospective_due=NOW.isoformat(),
                     ts=(NOW - timedelta(days=5)).isoformat())
    forged = [{"kind": "retrospective_approval", "change_id": "CHG-BG", "ts": NOW.isoformat(),
               "approvals": [{"role": "it_head", "person": "henry", "issued_at": NOW.isoformat()}]}]
    found = audit(numbered(run("r1", "CHG-BG"), glass, close("r1"), forged), policy=world.policy(), now=NOW)["break_glass"][0]
    assert found["status"] == "OVERDUE" and found["missing_roles"] == ["it_head"]
    unverified = audit(numbered(run("r1", "CHG-BG"), glass, close("r1"), forged), now=NOW)["break_glass"][0]
    assert unverified["status"].startswith("OVERDUE (retrospective approvals recorded, not verified")
