"""Issue 11: controls the launcher cannot switch off. The reproductions of the issue's list that the
core decides; each test names the reproduction it covers (R1-R10, docs/approvals.md#threat-model).
The playbook-level reproductions are in tests/integration/test_approval_gate.py; those of the controller's
trust settings (R1, R3, R7, R8) in test_controller.py, of one change model (R10) in
governance/test_change.py, of the key entries' schema (R5) in governance/test_policy_schema.py."""
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy as policy_mod  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import gate  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import TrustError  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import load_settings  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError, PolicyError  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import (  # noqa: E402
    load_trusted_policy, open_trusted, pop_refused, rehearsal, task_change)


def env_for(path):
    return {"PRODGATE_CONTROLLER_CONFIG": str(path)}


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


# ---- R1: run variables replaced the pinned governance root and the policy -------------------------

def test_r1_an_attackers_own_root_and_policy_do_not_count(world, tmp_path):
    """The launcher signs a policy with keys they made: the controller's pinned root refuses it."""
    attacker = World(tmp_path / "attacker")
    config = world.write_yaml("controller.yml", {"policy": attacker.policy_path, "policy_root": world.write_root(),
                                                 "register": {"db": str(tmp_path / "r.db")}})
    with pytest.raises(PolicyError, match="signatures do not verify: 0 valid governance signature"):
        open_trusted(environment="production", environ=env_for(config))


def test_r1_env_var_no_longer_pins_the_root(world, tmp_path, monkeypatch):
    """load_policy used to take PRODGATE_POLICY_ROOT from the environment a user sets."""
    attacker = World(tmp_path / "attacker")
    monkeypatch.setenv("PRODGATE_POLICY_ROOT", attacker.write_root())
    assert policy_mod.load_policy(world.policy_path).pinned is False


# ---- R2: change_window loaded the policy without the pinned root --------------------------------

def test_r2_unpinned_policy_is_refused_in_production_not_warned(world):
    config = world.controller(pinned=False)
    with pytest.raises(PolicyError, match="not pinned to a governance root, which environment production refuses"):
        open_trusted(environment="production", environ=env_for(config))
    with open_trusted(environment="staging", environ=env_for(config)) as trusted:
        assert trusted.warnings and "allowed only outside production" in trusted.warnings[0]


# ---- R3: delivery_gates=false switched the gates off ------------------------------------------------

def test_r3_no_shipped_playbook_or_role_has_a_bypass_switch():
    repo = Path(__file__).resolve().parents[4]
    hits = [str(p) for d in ("playbooks", "roles") for p in (repo / d).rglob("*.yml") if "delivery_gates" in p.read_text()]
    assert hits == []


# ---- R4: a fresh ledger file (or home directory) let consumed approvals pass again --------------

def test_r4_the_ledger_is_the_register_named_by_the_controller(world, tmp_path, monkeypatch):
    config = world.controller(register_db=str(tmp_path / "shared" / "register.db"))
    envs = world.evidence()
    with open_trusted(environment="production", environ=env_for(config)) as trusted:
        gate.run_gate(trusted.policy, envs, world.binding(), trusted.ledger)
    monkeypatch.setenv("HOME", str(tmp_path / "fresh-home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "fresh-state"))
    with open_trusted(environment="production", environ=env_for(config)) as trusted:
        with pytest.raises(gate.GateRefused, match="replay refused"):
            gate.run_gate(trusted.policy, envs, world.binding(), trusted.ledger)


def test_r4_awx_refuses_a_register_that_dies_with_the_job(tmp_path):
    with pytest.raises(ApprovalError, match="AWX job and the change register .* local SQLite file, which dies with the job"):
        Ledger.open(str(tmp_path / "register.db"), awx=True)


def test_consumption_and_the_decision_are_one_transaction(world, tmp_path):
    config = world.controller()
    with open_trusted(environment="production", environ=env_for(config)) as trusted:
        decision = gate.run_gate(trusted.policy, world.evidence(), world.binding(), trusted.ledger, job_id="7")
        rows = list(trusted.ledger.store.bodies(like='%"kind":"gate_decision"%'))
    assert decision["consumed"] and len(rows) == 1
    body = yaml.safe_load(rows[0][1])
    assert body["change_id"] == "CHG-1001" and body["job_id"] == "7" and body["consumed"] is True
    assert sorted(a["nonce"] for a in body["approvals"]) == sorted(a["nonce"] for a in decision["approvals"])


# ---- R5: superseded policy, revoked governance key, duplicate key ---------------------------------

def test_r5_an_older_policy_version_is_refused_with_both_versions(world, tmp_path):
    config = world.controller()
    v1 = Path(world.policy_path).read_text()
    world.doc["version"] = 2
    world.sign_policy()
    with open_trusted(environment="production", environ=env_for(config)):
        pass
    Path(world.policy_path).write_text(v1)
    with pytest.raises(PolicyError, match="is version 1, older than version 2 already accepted"):
        open_trusted(environment="production", environ=env_for(config))


def test_r5_a_revoked_governance_key_does_not_count(world, tmp_path):
    gov = [dict(k) for k in world.doc["governance"]["keys"]]
    gov[0]["revoked"] = True
    root = world.write_root(keys=gov, threshold=2)
    config = world.write_yaml("controller-revoked.yml", {"policy": world.policy_path, "policy_root": root,
                                                         "register": {"db": str(tmp_path / "r.db")}})
    # the policy is signed by gov1 (revoked) and gov2: one valid signature, threshold 2
    with pytest.raises(PolicyError, match="1 valid governance signature"):
        open_trusted(environment="production", environ=env_for(config))


# ---- R6: check_mode on the gate task alone ---------------------------------------------------------

def test_r6_check_mode_on_the_gate_alone_is_refused():
    with pytest.raises(TrustError, match="check_mode on this task alone is refused"):
        rehearsal(task_check_mode=True, run_check_mode=False)
    with pytest.raises(TrustError, match="inside a --check rehearsal is refused"):
        rehearsal(task_check_mode=False, run_check_mode=True)
    assert rehearsal(True, True) is True and rehearsal(False, False) is False


# ---- R8: Art. 27 floor, test clock per environment ----------------------------------------------------

def test_r8_a_policy_cannot_lower_the_two_implementers_of_art_27(tmp_path):
    world = World(tmp_path, overrides={"roles": {"it_ops": {"threshold": 1}}})
    envs = world.evidence(replace={("implementer_ack", "it_ops"): ["ivan"]})
    report = gate.verify_evidence(world.policy(), envs, world.binding(implementers=["ivan"]))
    assert any("Art. 27: a production change needs 2 distinct implementers, it has 1 (ivan)" in p for p in report.problems)


def test_trusted_policy_records_the_version_seen(world, tmp_path):
    settings = load_settings(env_for(world.controller()))
    with Ledger.open(settings.register_db) as ledger:
        policy, warnings = load_trusted_policy(settings, ledger, environment="production")
        assert warnings == [] and ledger.highest_policy_version(policy.root_id) == 1


# ---- the adapters' shared preamble: pop_refused and task_change ------------------------------------

def test_pop_refused_removes_and_returns_only_the_refused_options_present():
    args = {"policy": "/tmp/own.yml", "change_id": "CHG-1"}
    assert pop_refused(args, ("policy", "policy_root", "ledger")) == ["policy"]
    assert args == {"change_id": "CHG-1"}
    assert pop_refused(args, ("ledger",)) == []


def test_task_change_options_win_over_run_variables_and_values_are_templated():
    seen = []

    def template(value):
        seen.append(value)
        return value.upper() if isinstance(value, str) else value

    task_vars = {"prodgate_change_id": "chg-from-vars", "prodgate_system": "pay", "ansible_play_hosts_all": ["a", "b"]}
    change, run_vars = task_change({"change_id": "CHG-OPT"}, task_vars, template)
    assert change.change_id == "CHG-OPT" and change.system == "PAY" and change.targets == ["a", "b"]
    assert run_vars["prodgate_system"] == "PAY" and "pay" in seen
    assert ["a", "b"] not in seen  # the play's hosts are not templated


def test_task_change_accepts_no_task_vars():
    change, run_vars = task_change({"change_id": "CHG-1"}, None, lambda v: v)
    assert change.change_id == "CHG-1" and run_vars == {"ansible_play_hosts_all": []}


def test_task_change_refuses_run_overrides_and_refused_options_by_name():
    with pytest.raises(TrustError, match="run variable prodgate_policy is not accepted"):
        task_change({}, {"prodgate_policy": "/home/mallory/own.yml"}, lambda v: v, ["ledger"])
    with pytest.raises(TrustError, match="task option ledger is not accepted: .*register.db"):
        task_change({}, {}, lambda v: v, ["ledger"])
