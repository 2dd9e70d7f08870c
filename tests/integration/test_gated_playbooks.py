"""Every production-changing playbook goes through the change window and the approval gate
(issue 11, Deliver 6), on the podman lab, with the lab's approval world (lab_world.py).

- test_refused_without_approvals: switchover, failover, rejoin_standby, prepare_environment,
  hygiene remediation and the restore drill, each with a change whose only signed approvals are the
  Art. 27 acknowledgements: the gate refuses with the missing approval named, and no task after
  it ran (no host changed: every host's recap says changed=0, and the first play after the gate
  never started);
- test_switchover_passes_with_its_approvals_and_switches_back: the full positive run (db1 -> db2,
  then back as a change of its own), each completed; the same approvals replayed are refused;
- test_failover_break_glass: the gate passes on the on-site supervisor's and one implementer's
  acknowledgements only and records the change as BREAK-GLASS, open until the retrospective
  approval; the failover's own safety check then stops the run, because the lab's primary is
  running (so the shared lab is not failed over), and `prodgate register audit` lists it open,
  then closed once the IT head and the COO have signed the retrospective approval.
"""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_world import LabWorld  # noqa: E402  pylint: disable=wrong-import-position

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
ACKS = ["implementer_ack", "supervisor_ack"]

# playbook, Art. 25 change type, system, targets, extra arguments, the first play after the gate
BOOKS = {
    "switchover": ("switchover.yml", "non_routine", "online_acceptance", ["db1", "db2", "app1", "app2"], [],
                   "Switch-over, step 1"),
    "failover": ("failover.yml", "non_routine", "online_acceptance", ["db1", "db2", "app1", "app2"], [],
                 "Failover, step 1"),
    "rejoin_standby": ("rejoin_standby.yml", "maintenance", "online_acceptance", ["db2"], ["--limit", "db2"],
                       "Rebuild a standby from the current primary"),
    "prepare_environment": ("prepare_environment.yml", "environment", "online_acceptance", ["db1"], ["--limit", "db1"],
                            "Host layer (Art. 6)"),
    "hygiene_remediation": ("hygiene_audit.yml", "maintenance", "online_acceptance", ["app1"],
                            ["--limit", "app1", "-e", "hygiene_mode=remediate"], "Production hygiene audit (Art. 26)"),
    "restore_drill": ("restore_drill.yml", "routine", "infrastructure_backup", ["backup1"], [], "PLAY [Restore drill]"),
}


def run(cmd, env, timeout=900):
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def podman(host, *cmd):
    return subprocess.run(["podman", "exec", f"prodgate-lab-{host}", *cmd], capture_output=True, text=True, timeout=60,
                          check=False)


def recap_changed(out):
    """{host: changed count} from the PLAY RECAP."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", out, re.M)}


def register_form(world, env, change):
    rc, out = run([BIN / "prodgate", "register", "form", "--db", world.register_db, change, "--json"], env)
    assert rc == 0, out
    return json.loads(out)


def in_recovery(host):
    proc = podman(host, "runuser", "-u", "postgres", "--", "psql", "-XAtc", "SELECT pg_is_in_recovery()")
    return proc.stdout.strip() if proc.returncode == 0 else f"error: {proc.stderr.strip()}"


@pytest.fixture(scope="module", name="world")
def fixture_world(tmp_path_factory):
    return LabWorld(tmp_path_factory.mktemp("gated") / "world", break_glass=True)


def playbook(world, book, change_id, args=()):
    return run([BIN / "ansible-playbook", ROOT / "playbooks" / book, "-e", f"@{world.vars_file(change_id)}", *args],
               world.env())


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_refused_without_approvals(world, name):
    book, change_type, system, targets, args, next_play = BOOKS[name]
    change = f"T-{time.strftime('%Y%m%d%H%M%S')}-{name}"
    world.change(change, change_type, system, targets=targets)
    world.sign(change, stages=ACKS)
    rc, out = playbook(world, book, change, args)
    assert rc != 0, out[-3000:]
    assert "refused" in out and "approval for role it_head is missing" in out, out[-3000:]
    assert next_play not in out, f"{name}: a play after the gate started:\n{out[-3000:]}"
    changed = recap_changed(out)
    assert changed and not any(changed.values()), f"{name}: hosts changed before the gate refused: {changed}"


def _standby_ready(world, env, stamp):
    """db1 primary and db2 its streaming standby; prepared through the gated prepare_environment.yml when not."""
    rc, out = run([BIN / "ansible-playbook", "playbooks/lab.yml", "-e", "lab_state=started", "--limit", "db1,db2,app1,app2"],
                  world.env(callback=False))
    if rc != 0:
        pytest.fail(f"the lab did not come up (db1, db2, app1, app2):\n{out[-3000:]}")
    if in_recovery("db1") == "f" and in_recovery("db2") == "t":
        return
    change = f"T-{stamp}-PREPDB"
    world.change(change, "environment", "online_acceptance", targets=["db1", "db2"])
    world.sign(change)
    rc, out = run([BIN / "ansible-playbook", "playbooks/prepare_environment.yml", "--limit", "db1,db2",
                   "-e", f"@{world.vars_file(change)}"], env, timeout=1800)
    if rc != 0 or in_recovery("db1") != "f" or in_recovery("db2") != "t":
        pytest.fail(f"db1/db2 are not a primary and its standby after prepare_environment.yml:\n{out[-3000:]}")


def test_switchover_passes_with_its_approvals_and_switches_back(world):
    env = world.env()
    stamp = time.strftime("%Y%m%d%H%M%S")
    _standby_ready(world, env, stamp)
    targets = ["db1", "db2", "app1", "app2"]
    there, back = f"T-{stamp}-SW", f"T-{stamp}-SWBACK"
    for change in (there, back):
        world.change(change, "non_routine", "online_acceptance", targets=targets)
        world.sign(change)
    rc, out = playbook(world, "switchover.yml", there)
    assert rc == 0, out[-4000:]
    form = register_form(world, env, there)
    assert form["gate"]["status"] == "gated" and form["approvals"][-1]["consumed"] is True, form["approvals"]
    assert any("as completed" in str(t["task"]) for tasks in form["per_host"].values() for t in tasks)
    assert (in_recovery("db1"), in_recovery("db2")) == ("t", "f"), "db2 must be the primary after the switch-over"
    # the same approvals again: the change is completed and its approvals consumed
    rc, replay = playbook(world, "switchover.yml", there)
    assert rc != 0 and "refused" in replay and "Switch-over, step 1" not in replay, replay[-3000:]
    rc, out = playbook(world, "switchover.yml", back)
    assert rc == 0, out[-4000:]
    assert (in_recovery("db1"), in_recovery("db2")) == ("f", "t"), "db1 must be the primary again after the switch-back"


def test_failover_break_glass(world):
    env = world.env()
    change = f"T-{time.strftime('%Y%m%d%H%M%S')}-BG"
    targets = ["db1", "db2", "app1", "app2"]
    world.change(change, "non_routine", "online_acceptance", targets=targets, extra_vars={"prodgate_break_glass": True})
    signed = world.sign(change, break_glass=True)
    assert sorted(signed) == [("implementer_ack", "it_ops", "ivan"), ("supervisor_ack", "ops_supervisor", "sam")]
    rc, out = playbook(world, "failover.yml", change, ["--limit", "db1,db2,app1,app2"])
    # the gate passed in break-glass mode on the two acknowledgements, and the form says BREAK-GLASS, open ...
    form = register_form(world, env, change)
    decision = form["approvals"][-1]
    assert decision["performed_stage"] == "break_glass" and decision["consumed"] is True, decision
    assert decision["checked_stages"] == ["implementer_ack", "supervisor_ack"] and decision["implementers"] == ["ivan"]
    assert form["gate"]["break_glass"] is True and form["gate"]["status"] == "BREAK-GLASS open", form["gate"]
    # ... then the failover refused on its own: the lab's primary runs (nothing was fenced or promoted)
    assert rc != 0 and "failover refused: primaries running db1" in out, out[-4000:]
    assert in_recovery("db1") == "f"
    rc, audit = run([BIN / "prodgate", "register", "audit", "--db", world.register_db, "--json"], env)
    assert rc in (0, 1), audit
    findings = [f for f in json.loads(audit).get("break_glass", []) if f["change_id"] == change]
    assert findings and findings[0]["status"] == "open", audit
    assert findings[0]["missing_roles"] == ["it_head", "coo"]
    # ... until the roles the policy names sign the retrospective approval
    assert sorted(world.sign(change, retrospective=True)) == [("retrospective_approval", "coo", "carol"),
                                                              ("retrospective_approval", "it_head", "henry")]
    rc, out = run([BIN / "prodgate", "register", "retrospective", change, "--evidence",
                   world.root / "evidence" / f"{change}-retrospective", "--db", world.register_db], env)
    assert rc == 0, out
    rc, audit = run([BIN / "prodgate", "register", "audit", "--db", world.register_db, "--json"], env)
    closed = [f for f in json.loads(audit)["break_glass"] if f["change_id"] == change]
    assert closed[0]["status"] == "closed" and closed[0]["missing_roles"] == [] and not closed[0]["late"], audit
