"""The approval CLI: keys generate, approve, evidence verify, policy check / sign (each also with --json)."""
import json
import os
import re
import stat
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import ARTIFACT, World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli import main  # noqa: E402


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_keys_generate_writes_0600_key_and_optional_passphrase(tmp_path, capsys, monkeypatch):
    key = tmp_path / "alice.key"
    code, out, dummy_err = run(capsys, "keys", "generate", "--out", str(key), "--person", "alice", "--json")
    assert code == 0
    data = json.loads(out)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert data["keyid"] == dsse.keyid_of(data["public_key"]) and not data["encrypted"]
    assert (tmp_path / "alice.key.pub").read_text().strip() == data["public_key"]
    code, dummy_out, err = run(capsys, "keys", "generate", "--out", str(key))
    assert code == 1 and "refusing to overwrite" in err
    monkeypatch.setenv("PG_PASS", "correct horse")
    enc = tmp_path / "bob.key"
    code, out, dummy_err = run(capsys, "keys", "generate", "--out", str(enc), "--passphrase-env", "PG_PASS", "--json")
    assert json.loads(out)["encrypted"] and b"ENCRYPTED" in enc.read_bytes()
    code, dummy_out, err = run(capsys, "keys", "show", str(enc))
    assert code == 1 and "is encrypted" in err
    code, out, dummy_err = run(capsys, "keys", "show", str(enc), "--passphrase-env", "PG_PASS", "--json")
    assert code == 0 and json.loads(out)["public_key"] == (tmp_path / "bob.key.pub").read_text().strip()


def test_policy_sign_and_check(tmp_path, capsys):
    world = World(tmp_path, sign=False)
    code, out, dummy_err = run(capsys, "policy", "check", world.policy_path, "--json")
    assert code == 1 and "is not signed" in " ".join(json.loads(out)["problems"])
    gov = []
    for i, key in enumerate(world.gov_keys[:2]):
        path = tmp_path / f"gov{i}.key"
        dsse.write_private_key(str(path), key)
        gov.append(str(path))
    code, out, dummy_err = run(capsys, "policy", "sign", world.policy_path, "--key", gov[0])
    assert code == 0 and "1 signature(s), threshold 2" in out
    code, out, dummy_err = run(capsys, "policy", "check", world.policy_path)
    assert code == 1 and "need 2" in out
    run(capsys, "policy", "sign", world.policy_path, "--key", gov[1])
    code, out, dummy_err = run(capsys, "policy", "check", world.policy_path)
    assert code == 0 and "OK, version 1" in out
    code, dummy_out, err = run(capsys, "policy", "sign", world.policy_path, "--key", world.write_key("carol"))
    assert code == 1 and "not one of the policy's governance keys" in err
    world.policy()  # the CLI-signed file loads


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


def test_evidence_verify_up_to_the_trial_run(tmp_path, capsys):
    world = World(tmp_path)
    binding = world.binding(change_type="initial_go_live")
    evidence = world.write_evidence(world.evidence(binding=binding, without=("trial_run", "go_live")))
    change = world.write_yaml("change.yml", {k: binding[k] for k in ("change_id", "system", "environment", "change_type",
                                                                     "version", "artifacts", "targets")})
    common = ["evidence", "verify", "--policy", world.policy_path, "--evidence", evidence, "--change", change, "--launcher", "ivan"]
    code, out, dummy_err = run(capsys, *common)
    assert code == 1 and "stage trial_run: approval for role it_pm is missing" in out
    code, out, dummy_err = run(capsys, *common, "--stage", "trial_run")
    assert code == 0, out
    assert "pending: trial_run, go_live" in out and "RESULT: complete up to trial_run, the gate will pass" in out
    assert re.search(r"^trial_run\s+it_pm\s+1\s+-\s+pending$", out, re.M), out
    code, out, dummy_err = run(capsys, *common, "--stage", "auto", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["performed_stage"] == "trial_run"
    assert data["pending_stages"] == ["trial_run", "go_live"]
    assert data["checked_stages"] == ["plan_submission", "coo_approval", "internal_review", "implementer_ack", "supervisor_ack"]
