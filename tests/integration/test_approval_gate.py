"""Playbook tests of prodgate.deploy.approval_gate: one passing change and the refusals, each
asserting its message and that no task after the gate ran on any host; then the gate's stage
option as playbooks/go_live.yml uses it (trial run, then formal go-live); then the reproductions
of issue 11 (controls the launcher cannot switch off), each named "Reproduction Rn" after the
list in docs/approvals.md#threat-model.

The policy, its pinned governance root and the register come from a controller.yml the test
writes (PRODGATE_CONTROLLER_CONFIG), never from run variables; the launcher is the real user
running ansible-playbook, mapped to ivan by `logins:` in the test policy."""
import base64
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from approval_world import ARTIFACT, World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import real_user  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "tests" / "integration" / "playbooks" / "approval_gate.yml"
STAGE_PLAYBOOK = REPO / "tests" / "integration" / "playbooks" / "approval_gate_stage.yml"
GO_LIVE = REPO / "playbooks" / "go_live.yml"
PLAYBOOK_NARROW = REPO / "tests" / "integration" / "playbooks" / "approval_gate_narrow.yml"
VENV_BIN = REPO / ".venv" / "bin"


class Gate:
    def __init__(self, tmp_path, **world_args):
        self.tmp = tmp_path
        self.world = World(tmp_path, **world_args)
        self.inventory = tmp_path / "hosts.yml"
        self.inventory.write_text("change_hosts:\n  hosts:\n    app1:\n    app2:\n  vars:\n"
                                  f"    ansible_python_interpreter: {VENV_BIN / 'python'}\n")
        self.ledger = str(tmp_path / "register.db")
        self.controller = self.world.controller(register_db=self.ledger)

    def ledger_view(self):
        return Ledger.open(self.ledger)

    def run(self, envelopes=None, evidence=None, extra_args=(), playbook=PLAYBOOK, env_extra=None, **overrides):  # pylint: disable=too-many-arguments
        if evidence is None:
            evidence = self.world.write_evidence(self.world.evidence() if envelopes is None else envelopes,
                                                 name=f"evidence{len(list(self.tmp.glob('evidence*')))}")
        variables = {
            "prodgate_evidence": evidence,
            "prodgate_change_id": "CHG-1001", "prodgate_change_type": "version_update", "prodgate_system": "ta-core",
            "prodgate_environment": "production", "prodgate_version": "3.2.1", "prodgate_artifacts": [ARTIFACT],
            "prodgate_implementers": ["ivan", "jane"], "prodgate_supervisor": "sam",
        }
        variables.update(overrides)
        variables = {k: v for k, v in variables.items() if v is not None}
        vars_file = self.tmp / "vars.json"
        vars_file.write_text(json.dumps(variables))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{VENV_BIN}:{os.environ['PATH']}",
                   PRODGATE_CONTROLLER_CONFIG=str(self.controller),
                   ANSIBLE_CALLBACKS_ENABLED="prodgate.deploy.change_register")  # a production change is on record
        env.update(env_extra or {})
        proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), "-e", f"@{vars_file}", str(playbook), *extra_args],
                              capture_output=True, text=True, env=env, cwd=str(REPO), check=False, timeout=300)
        return proc.returncode, proc.stdout + proc.stderr

    def refused(self, message, prefix="approval gate refused the change", **kwargs):
        code, out = self.run(**kwargs)
        assert code != 0, out
        assert prefix in out, out
        assert message in out, out
        assert "PAST-THE-GATE" not in out, out
        return out


@pytest.fixture(name="gate")
def fixture_gate(tmp_path):
    return Gate(tmp_path)


def test_passing_change_runs_on_every_host_and_returns_the_approvals(gate):
    code, out = gate.run(complete_change=True)
    assert code == 0, out
    assert "PAST-THE-GATE app1 stages=plan_submission,coo_approval,internal_review,trial_run,go_live,implementer_ack,supervisor_ack" in out
    assert "PAST-THE-GATE app2" in out


def test_forged_signature(gate):
    envs = gate.world.evidence()
    sig = bytearray(base64.b64decode(envs[3]["signatures"][0]["sig"]))
    sig[0] ^= 0xFF
    envs[3]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    gate.refused("signature does not verify (forged or altered after signing)", envelopes=envs)


def test_unknown_key(gate):
    envs = gate.world.evidence(skip={("go_live", "coo", "carol")})
    envs.append(gate.world.approve("go_live", "coo", "carol", key=dsse.generate_private_key(), offset_minutes=40))
    gate.refused("signed by unknown key", envelopes=envs)


def test_revoked_key(gate):
    envs = gate.world.evidence(replace={("go_live", "risk_compliance"): ["rex"]})
    gate.refused("of rex is revoked in the policy", envelopes=envs)


def test_expired_approval(gate):
    world = gate.world
    envs = world.evidence(skip={("go_live", "coo", "carol")})
    envs.append(world.approve("go_live", "coo", "carol", offset_minutes=40, not_after=world.now - timedelta(hours=1)))
    gate.refused("expired at", envelopes=envs)


def test_wrong_system(gate):
    gate.refused("approves system 'ta-core' but this run is system 'crm'", prodgate_system="crm")


def test_wrong_artifact_digest(gate):
    gate.refused(f"does not approve artifact sha256:{'7' * 64}", prodgate_artifacts=["7" * 64])


def test_missing_role(gate):
    envs = gate.world.evidence(skip={("go_live", "president_office", "pam")})
    gate.refused("stage go_live: approval for role president_office is missing: need 1 of [pam]", envelopes=envs)


def test_quorum_not_met(gate):
    envs = gate.world.evidence(skip={("internal_review", "review_panel", "rev1")})
    gate.refused("approval for role review_panel is missing: need 2 of [rev1, rev3] (have 1: rev2)", envelopes=envs)


def test_one_person_in_two_roles(gate):
    envs = gate.world.evidence(replace={("go_live", "risk_compliance"): ["olga"], ("go_live", "business_owner"): ["olga"],
                                        ("trial_run", "business_owner"): ["olga"]})
    gate.refused("separation of duties: olga counts for two roles", envelopes=envs)


def test_implementer_who_is_also_an_approver(gate):
    envs = gate.world.evidence(replace={("go_live", "risk_compliance"): ["dual"], ("implementer_ack", "it_ops"): ["ivan", "dual"]})
    gate.refused("separation of duties: dual is an implementer and also an approver", envelopes=envs, prodgate_implementers=["ivan", "dual"])


def test_launcher_not_an_implementer(tmp_path):
    gate = Gate(tmp_path, launcher="sam")
    gate.refused(f"launcher {real_user()} is not one of the implementers [ivan, jane]")


def test_replay_of_a_completed_change(gate):
    evidence = gate.world.write_evidence(gate.world.evidence(), name="evidence-once")
    code, out = gate.run(evidence=evidence, complete_change=True)
    assert code == 0, out
    fresh = gate.world.write_evidence(gate.world.evidence(), name="evidence-fresh")
    gate.refused("change CHG-1001 already completed at", evidence=fresh)


def test_approvals_are_single_use(gate):
    evidence = gate.world.write_evidence(gate.world.evidence(), name="evidence-once")
    code, out = gate.run(evidence=evidence)
    assert code == 0, out
    gate.refused("replay refused, nonce", evidence=evidence)


def test_altered_policy(gate):
    evidence = gate.world.write_evidence(gate.world.evidence(), name="evidence-policy")
    path = Path(gate.world.policy_path)
    path.write_text(path.read_text().replace("name: Carol", "name: Mallory"))
    gate.refused("the file was altered after signing", evidence=evidence)


def test_check_mode_decides_without_consuming(gate):
    evidence = gate.world.write_evidence(gate.world.evidence(), name="evidence-check")
    code, out = gate.run(evidence=evidence, extra_args=["--check"])
    assert code == 0 and "consumed=False" in out, out
    with gate.ledger_view() as ledger:  # the rehearsal is on record, and consumed nothing
        decisions = [json.loads(b) for dummy, b in ledger.store.bodies(like='%"kind":"gate_decision"%')]
        assert [d["rehearsal"] for d in decisions] == [True] and ledger.nonces_of("CHG-1001") == []
    code, out = gate.run(evidence=evidence)
    assert code == 0 and "PAST-THE-GATE app2" in out, out


# ---- the stage option, as playbooks/go_live.yml uses it: trial run, then formal go-live ---------

LATER = ("trial_run", "go_live")
BEFORE_TRIAL = "plan_submission,coo_approval,internal_review,implementer_ack,supervisor_ack"


def stage_of(envelope):
    return json.loads(base64.b64decode(envelope["payload"]))["predicate"]["stage"]


def first_go_live(gate, stage, **kwargs):
    return gate.run(playbook=STAGE_PLAYBOOK, gate_stage=stage, prodgate_change_type="initial_go_live", **kwargs)


def refused_at(gate, stage, message, **kwargs):
    return gate.refused(message, playbook=STAGE_PLAYBOOK, gate_stage=stage, prodgate_change_type="initial_go_live", **kwargs)


def test_trial_run_passes_twice_without_consuming_then_the_formal_go_live_consumes(gate):
    world = gate.world
    full = world.evidence(binding=world.binding(change_type="initial_go_live"))
    trial = world.write_evidence([e for e in full if stage_of(e) not in LATER], name="evidence-trial")
    formal = world.write_evidence(full, name="evidence-formal")
    for dummy in range(2):
        code, out = first_go_live(gate, "auto", evidence=trial)
        assert code == 0, out
        for host in ("app1", "app2"):
            assert f"PAST-THE-GATE {host} performed=trial_run checked={BEFORE_TRIAL} pending=trial_run,go_live consumed=False" in out
        assert ("approved for the trial_run stage: signed plan_submission, coo_approval, internal_review, implementer_ack, "
                "supervisor_ack (7 approvals, not consumed); to sign after it: trial_run (it_pm, business_owner), then go_live "
                "(business_owner, risk_compliance, coo, president_office)") in out
        with gate.ledger_view() as ledger:
            assert ledger.nonces_of("CHG-1001") == [] and not ledger.is_completed("CHG-1001")
    code, out = first_go_live(gate, "auto", evidence=formal)
    assert code == 0, out
    assert "PAST-THE-GATE app2 performed=go_live checked=plan_submission,coo_approval,internal_review,trial_run,go_live," in out
    assert "pending= consumed=True" in out
    with gate.ledger_view() as ledger:
        assert len(ledger.nonces_of("CHG-1001")) == len(full) and ledger.is_completed("CHG-1001")
    refused_at(gate, "trial_run", "change CHG-1001 already completed at", evidence=trial)


def test_trial_run_refused_without_coo_approval(gate):
    envs = gate.world.evidence(binding=gate.world.binding(change_type="initial_go_live"), without=LATER + ("coo_approval",))
    out = refused_at(gate, "auto", "stage coo_approval: approval for role coo is missing: need 1 of [carol, cody]", envelopes=envs)
    assert "approval gate refused the change at stage trial_run (stages before it) (1 problem(s))" in out


def test_forged_envelope_refused_in_the_trial_run(gate):
    envs = gate.world.evidence(binding=gate.world.binding(change_type="initial_go_live"), without=LATER)
    sig = bytearray(base64.b64decode(envs[0]["signatures"][0]["sig"]))
    sig[0] ^= 0xFF
    envs[0]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    out = refused_at(gate, "trial_run", "signature does not verify (forged or altered after signing)", envelopes=envs)
    assert "at stage trial_run" in out


def test_expired_approval_refused_in_the_trial_run(gate):
    world = gate.world
    binding = world.binding(change_type="initial_go_live")
    envs = world.evidence(binding=binding, without=LATER, skip={("coo_approval", "coo", "carol")})
    envs.append(world.approve("coo_approval", "coo", "carol", binding, offset_minutes=10, not_after=world.now - timedelta(hours=1)))
    refused_at(gate, "auto", "expired at", envelopes=envs)


def test_formal_go_live_refused_without_the_trial_run_summary(gate):
    envs = gate.world.evidence(binding=gate.world.binding(change_type="initial_go_live"), without=("trial_run",))
    out = refused_at(gate, "all", "stage trial_run: approval for role it_pm is missing: need 1 of [paula]", envelopes=envs)
    assert "stage trial_run: approval for role business_owner is missing" in out
    with gate.ledger_view() as ledger:
        assert ledger.nonces_of("CHG-1001") == []


def test_go_live_playbook_decides_the_stage_through_the_gate_only():
    play = yaml.safe_load(GO_LIVE.read_text())[0]
    tasks = play["tasks"]
    gates = [t for t in tasks if "prodgate.deploy.approval_gate" in t]
    assert len(gates) == 1, gates
    assert gates[0]["prodgate.deploy.approval_gate"]["stage"] == "auto" and gates[0]["register"] == "go_live_gate"
    text = GO_LIVE.read_text()
    assert "evidence', 'verify" not in text and "ansible.builtin.command" not in yaml.safe_dump(tasks)
    assert "when: go_live_gate.performed_stage == 'go_live'" in text  # change_complete after the formal go-live only


@pytest.mark.parametrize("book", ["go_live.yml", "upgrade.yml", "rollback.yml"])
def test_change_window_is_checked_before_the_gate_consumes_the_approvals(book):
    """A change refused by a freeze window or the lead time must keep its single-use approvals."""
    gate_play = yaml.safe_load((REPO / "playbooks" / book).read_text())[0]
    modules = [next((k for k in t if k.startswith("prodgate.deploy.")), None) for t in gate_play["tasks"]]
    assert "prodgate.deploy.change_window" in modules and "prodgate.deploy.approval_gate" in modules, modules
    assert modules.index("prodgate.deploy.change_window") < modules.index("prodgate.deploy.approval_gate"), modules


# ---- issue 11: the reproductions at the playbook level (docs/approvals.md#threat-model) ----------

def test_r1_run_variables_cannot_replace_the_root_and_the_policy(gate, tmp_path):
    """Reproduction R1: an attacker's own root and policy, with approvals signed by keys they made."""
    attacker = World(tmp_path / "attacker")
    evidence = attacker.write_evidence(attacker.evidence(), name="forged")
    gate.refused("run variable prodgate_policy is not accepted", evidence=evidence,
                 prodgate_policy=attacker.policy_path, prodgate_policy_root=attacker.write_root())
    gate.refused("run variable prodgate_policy_root is not accepted", evidence=evidence,
                 prodgate_policy_root=attacker.write_root())


def test_r3_delivery_gates_false_is_refused(gate):
    """Reproduction R3: no variable switches the gate off."""
    gate.refused("run variable delivery_gates is not accepted: there is no switch", delivery_gates=False)


def test_r4_a_fresh_ledger_or_home_does_not_bring_approvals_back(gate, tmp_path):
    """Reproduction R4: consumed approvals stay consumed whatever file or home the run picks."""
    evidence = gate.world.write_evidence(gate.world.evidence(), name="evidence-r4")
    code, out = gate.run(evidence=evidence)
    assert code == 0, out
    gate.refused("run variable prodgate_ledger is not accepted", evidence=evidence, prodgate_ledger=str(tmp_path / "new.sqlite"))
    gate.refused("replay refused", evidence=evidence, env_extra={"HOME": str(tmp_path / "fresh-home"),
                                                                 "XDG_STATE_HOME": str(tmp_path / "fresh-state")})


def test_r6_check_mode_on_the_gate_task_alone_is_refused(gate):
    """Reproduction R6: the gate in check mode while the next tasks run for real."""
    PLAYBOOK_R6 = REPO / "tests" / "integration" / "playbooks" / "approval_gate_check_task.yml"  # noqa: N806
    out = gate.refused("check_mode on this task alone is refused", playbook=PLAYBOOK_R6)
    assert "PAST-THE-GATE" not in out


def test_r7_user_and_logname_do_not_make_the_launcher(tmp_path):
    """Reproduction R7: USER=ivan does not pass the "launcher must be an implementer" rule."""
    gate = Gate(tmp_path, launcher="sam")
    gate.refused(f"launcher {real_user()} is not one of the implementers [ivan, jane]",
                 env_extra={"USER": "ivan", "LOGNAME": "ivan"})
    gate.refused("awx_user_name (ivan) is not accepted on this controller", awx_user_name="ivan")


def test_r10_implementers_given_as_one_string_are_two_people(gate):
    """Reproduction R10 (one change model): "ivan,jane" is two implementers for the gate as for the register."""
    code, out = gate.run(prodgate_implementers="ivan,jane")
    assert code == 0 and "PAST-THE-GATE app2" in out, out


def test_the_targets_option_cannot_narrow_the_change(gate):
    """Attack review: `targets: [app1]` on a play over app1 and app2 passed the gate."""
    gate.refused("the targets option leaves out host(s) of this play: app2", playbook=PLAYBOOK_NARROW)


def test_skip_tags_and_start_at_task_are_refused_for_a_production_change(gate):
    """Attack review: `--skip-tags always` skipped the window and the gate of the shipped playbooks."""
    for option in (["--skip-tags", "always"], ["--start-at-task", "Deploy (stands for the real work; must never run on any host after a refusal)"]):
        code, out = gate.run(extra_args=option)
        assert code == 69 and f"{option[0]} is refused for a production change" in out and "PAST-THE-GATE" not in out, out
