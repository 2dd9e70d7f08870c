"""`prodgate evidence verify` (cli/evidence.py): the table, --stage, --json."""
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from .cli_run import run  # noqa: E402


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
