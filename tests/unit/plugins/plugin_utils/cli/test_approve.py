"""`prodgate approve` (cli/approve.py): signing approvals, then `evidence verify` and `evidence bundle` over them; refusals."""
import json
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import ARTIFACT, World  # noqa: E402  pylint: disable=wrong-import-position

from .cli_run import run  # noqa: E402


def test_approve_then_evidence_verify_table(tmp_path, capsys):
    world = World(tmp_path)
    change = world.write_yaml("change.yml", {"change_id": "CHG-7", "system": "wiki", "environment": "production",
                                             "change_type": "version_update", "version": "1.0", "artifacts": [ARTIFACT],
                                             "targets": ["app1", "app2"]})
    evidence = tmp_path / "ev"
    evidence.mkdir()
    signers = [("plan_submission", "it_head", "henry"), ("coo_approval", "coo", "carol"), ("go_live", "business_owner", "bella"),
               ("go_live", "risk_compliance", "rita"), ("go_live", "coo", "carol"), ("implementer_ack", "it_ops", "ivan"),
               ("implementer_ack", "it_ops", "jane"), ("supervisor_ack", "ops_supervisor", "sam")]
    for stage, role, person in signers:
        code, out, err = run(capsys, "approve", "--key", world.write_key(person), "--person", person, "--role", role,
                             "--stage", stage, "--change", change, "--policy", world.policy_path, "--out", str(evidence) + "/", "--json")
        assert code == 0, err
    code, out, dummy_err = run(capsys, "evidence", "verify", "--policy", world.policy_path, "--evidence", str(evidence),
                               "--change", change, "--launcher", "ivan")
    assert code == 1
    assert re.search(r"^go_live\s+president_office\s+1\s+-\s+missing 1$", out, re.M), out
    assert re.search(r"^implementer_ack\s+it_ops\s+2\s+ivan, jane\s+ok$", out, re.M), out
    assert "approval for role president_office is missing: need 1 of [pam]" in out
    assert "RESULT: INCOMPLETE (1 problem(s))" in out
    run(capsys, "approve", "--key", world.write_key("pam"), "--person", "pam", "--role", "president_office",
        "--stage", "go_live", "--change", change, "--out", str(evidence))
    code, out, dummy_err = run(capsys, "evidence", "verify", "--policy", world.policy_path, "--evidence", str(evidence),
                               "--change", change, "--launcher", "ivan", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and len(data["approvals"]) == 9
    code, out, dummy_err = run(capsys, "evidence", "bundle", str(evidence), "--out", str(tmp_path / "bundle.json"))
    assert code == 0 and "9 envelope(s)" in out


def test_approve_refuses_role_not_held_and_emergency_without_reason(tmp_path, capsys):
    world = World(tmp_path)
    common = ["--change-id", "C1", "--system", "wiki", "--environment", "production", "--change-type", "routine", "--target", "app1"]
    code, dummy_out, err = run(capsys, "approve", "--key", world.write_key("rita"), "--person", "rita", "--role", "coo", "--stage", "go_live",
                               "--policy", world.policy_path, "--out", str(tmp_path), *common)
    assert code == 1 and "rita does not hold role coo" in err
    code, dummy_out, err = run(capsys, "approve", "--key", world.write_key("carol"), "--person", "carol", "--role", "coo",
                               "--stage", "emergency_override", "--out", str(tmp_path), *common)
    assert code == 1 and "needs --reason" in err
    assert yaml.safe_load(Path(world.policy_path).read_text())["version"] == 1
