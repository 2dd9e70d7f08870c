"""A run that stops before a stage (the Art. 18, 20 trial run): Policy.stages_before splits the path,
verify_evidence(stage=...) checks the stages before it and reports the later ones as pending,
run_gate never consumes for it; stage auto picks the trial run until its summary is signed."""
import base64
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.gate import GateRefused, run_gate, verify_evidence  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger  # noqa: E402

ACKS = ["implementer_ack", "supervisor_ack"]
BEFORE_TRIAL = ["plan_submission", "coo_approval", "internal_review"] + ACKS
LATER = ("trial_run", "go_live")


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


def go_live(world, **over):
    return world.binding(change_type="initial_go_live", **over)


def check(world, envelopes, stage, binding=None, ledger=None):
    return verify_evidence(world.policy(), envelopes, binding or go_live(world), ledger=ledger, stage=stage)


def stage_of(envelope):
    return json.loads(base64.b64decode(envelope["payload"]))["predicate"]["stage"]


def problems_of(report):
    return "\n".join(report.problems)


# ---- the split of the path (policy) -----------------------------------------------------------

def test_stages_before_trial_run_are_the_earlier_steps_and_the_acknowledgements(world):
    pol = world.policy()
    required = pol.required_stages("ta-core", "initial_go_live", "production")
    due, pending = pol.stages_before(required, "trial_run")
    assert due == BEFORE_TRIAL
    assert pending == ["trial_run", "go_live"]


def test_stages_before_follow_the_policy_stage_order(tmp_path):
    # A policy that puts the internal review after the trial run: the review becomes pending.
    order = ["plan_submission", "coo_approval", "trial_run", "internal_review", "go_live", "change_approval"]
    world = World(tmp_path, overrides={"stage_order": order})
    pol = world.policy()
    required = pol.required_stages("ta-core", "initial_go_live", "production")
    assert pol.stages_before(required, "trial_run") == (["plan_submission", "coo_approval"] + ACKS,
                                                        ["trial_run", "internal_review", "go_live"])


def test_a_path_without_trial_run_cannot_stop_before_it(world):
    pol = world.policy()
    required = pol.required_stages("wiki", "initial_go_live", "production")
    with pytest.raises(ApprovalError, match=r"approval path \[plan_submission, coo_approval, go_live\] has no trial_run step"):
        pol.stages_before(required, "trial_run")
    with pytest.raises(ApprovalError, match="has no implementer_ack step"):
        pol.stages_before(required, "implementer_ack")


# ---- verify_evidence up to the trial run ------------------------------------------------------

def test_trial_run_passes_with_the_stages_before_it_and_reports_the_rest_pending(world):
    report = check(world, world.evidence(binding=go_live(world), without=LATER), "trial_run")
    assert report.problems == [] and report.ok
    assert report.performed_stage == "trial_run"
    assert report.checked_stages == BEFORE_TRIAL
    assert report.pending_stages == ["trial_run", "go_live"]
    assert {a.stage for a in report.counted} == set(BEFORE_TRIAL)
    pending_rows = [(r["stage"], r["role"]) for r in report.rows if r["status"] == "pending"]
    assert pending_rows == [("trial_run", "it_pm"), ("trial_run", "business_owner"), ("go_live", "business_owner"),
                            ("go_live", "risk_compliance"), ("go_live", "coo"), ("go_live", "president_office")]


def test_the_same_evidence_does_not_pass_the_whole_change(world):
    report = check(world, world.evidence(binding=go_live(world), without=LATER), "all")
    assert not report.ok and report.pending_stages == []
    assert "stage trial_run: approval for role it_pm is missing" in problems_of(report)


def test_trial_run_refused_without_coo_approval(world):
    envs = world.evidence(binding=go_live(world), without=LATER + ("coo_approval",))
    report = check(world, envs, "trial_run")
    assert not report.ok
    assert "stage coo_approval: approval for role coo is missing: need 1 of [carol, cody]" in problems_of(report)
    assert "trial_run" not in problems_of(report) and "go_live" not in problems_of(report)


def test_trial_run_needs_the_art27_acknowledgements(world):
    envs = world.evidence(binding=go_live(world), without=LATER, skip={("implementer_ack", "it_ops", "jane")})
    assert "stage implementer_ack: approval for role it_ops is missing: need 2" in problems_of(check(world, envs, "trial_run"))


def test_trial_run_refuses_a_forged_envelope(world):
    envs = world.evidence(binding=go_live(world), without=LATER)
    sig = bytearray(base64.b64decode(envs[1]["signatures"][0]["sig"]))
    sig[3] ^= 0x01
    envs[1] = dict(envs[1], signatures=[{"keyid": envs[1]["signatures"][0]["keyid"], "sig": base64.b64encode(bytes(sig)).decode()}])
    report = check(world, envs, "trial_run")
    assert not report.ok
    assert "signature does not verify (forged or altered after signing)" in problems_of(report)


def test_trial_run_refuses_a_forged_envelope_of_a_pending_stage(world):
    envs = world.evidence(binding=go_live(world), without=("go_live",))
    trial = [i for i, e in enumerate(envs) if stage_of(e) == "trial_run"][0]
    statement = json.loads(base64.b64decode(envs[trial]["payload"]))
    statement["predicate"]["person"] = "paula"
    envs[trial] = dict(envs[trial], payload=base64.b64encode(json.dumps(statement).encode()).decode())
    assert "signature does not verify" in problems_of(check(world, envs, "trial_run"))


def test_trial_run_refuses_an_expired_approval(world):
    binding = go_live(world)
    envs = world.evidence(binding=binding, without=LATER, skip={("coo_approval", "coo", "carol")})
    envs.append(world.approve("coo_approval", "coo", "carol", binding, offset_minutes=10, not_after=world.now - timedelta(hours=1)))
    text = problems_of(check(world, envs, "trial_run"))
    assert "expired at" in text and "stage coo_approval: approval for role coo is missing" in text


def test_trial_run_enforces_the_order_of_the_stages_before_it(world):
    binding = go_live(world)
    envs = world.evidence(binding=binding, without=LATER + ("coo_approval",))
    envs.append(world.approve("coo_approval", "coo", "carol", binding, offset_minutes=-30))
    assert "stage order: coo_approval was signed by carol" in problems_of(check(world, envs, "trial_run"))


def test_trial_run_refused_by_a_rejection_of_a_later_stage(world):
    binding = go_live(world)
    envs = world.evidence(binding=binding, without=LATER)
    envs.append(world.approve("go_live", "coo", "cody", binding, offset_minutes=45, decision="reject", reason="not this year"))
    assert "cody (coo) signed a rejection: not this year" in problems_of(check(world, envs, "trial_run"))


def test_trial_run_refused_on_a_path_without_trial_run(world):
    binding = go_live(world, system="wiki")
    report = check(world, world.evidence(binding=binding), "trial_run", binding=binding)
    assert not report.ok and "has no trial_run step" in problems_of(report)


def test_unknown_run_stage_is_refused(world):
    report = check(world, world.evidence(binding=go_live(world)), "go_live")
    assert not report.ok and "unknown run stage 'go_live'; use one of [all, trial_run, auto]" in problems_of(report)


# ---- stage auto -------------------------------------------------------------------------------

def test_auto_is_the_trial_run_until_its_summary_is_signed(world):
    binding = go_live(world)
    report = check(world, world.evidence(binding=binding, without=LATER), "auto")
    assert report.ok and report.performed_stage == "trial_run" and report.pending_stages == ["trial_run", "go_live"]
    half = world.evidence(binding=binding, without=("go_live",), skip={("trial_run", "business_owner", "bella")})
    report = check(world, half, "auto")
    assert report.ok and report.performed_stage == "trial_run"
    # paula's half of the summary is pending, not counted for (nor consumed by) this run
    assert {a.stage for a in report.counted} == set(BEFORE_TRIAL)


def test_auto_is_the_formal_go_live_once_the_summary_is_signed(world):
    binding = go_live(world)
    report = check(world, world.evidence(binding=binding), "auto")
    assert report.ok and report.performed_stage == "go_live"
    assert report.pending_stages == [] and report.checked_stages == report.required_stages
    without_go_live = check(world, world.evidence(binding=binding, without=("go_live",)), "auto")
    assert without_go_live.performed_stage == "go_live" and not without_go_live.ok
    assert "stage go_live: approval for role president_office is missing" in problems_of(without_go_live)


def test_auto_goes_straight_to_the_go_live_on_a_path_without_trial_run(world):
    binding = go_live(world, system="wiki")
    report = check(world, world.evidence(binding=binding), "auto", binding=binding)
    assert report.ok and report.performed_stage == "go_live" and report.pending_stages == []


def test_auto_on_an_emergency_change_waives_the_trial_run(world):
    binding = go_live(world, emergency=True)
    report = check(world, world.evidence(binding=binding, emergency=True), "auto", binding=binding)
    assert report.ok and report.performed_stage == "go_live" and "emergency_override" in report.checked_stages


# ---- run_gate: the trial run never consumes ---------------------------------------------------

def test_trial_run_does_not_consume_and_the_formal_go_live_does(world, tmp_path):
    binding = go_live(world)
    early = world.evidence(binding=binding, without=LATER)
    later = [e for e in world.evidence(binding=binding) if stage_of(e) in LATER]
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as ledger:
        for dummy in range(2):
            result = run_gate(world.policy(), early, binding, ledger, stage="auto")
            assert result["performed_stage"] == "trial_run" and result["consumed"] is False
            assert result["pending_stages"][0] == {"stage": "trial_run", "roles": ["it_pm", "business_owner"]}
            assert ledger.nonces_of("CHG-1001") == []
        result = run_gate(world.policy(), early + later, binding, ledger, stage="auto")
        assert result["performed_stage"] == "go_live" and result["consumed"] is True and result["pending_stages"] == []
        assert len(ledger.nonces_of("CHG-1001")) == len(early + later)
        with pytest.raises(GateRefused) as err:
            run_gate(world.policy(), early, binding, ledger, stage="trial_run")
        assert "replay refused, nonce" in str(err.value)


def test_trial_run_refusal_names_the_stage(world, tmp_path):
    binding = go_live(world)
    envs = world.evidence(binding=binding, without=LATER + ("coo_approval",))
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as ledger:
        with pytest.raises(GateRefused) as err:
            run_gate(world.policy(), envs, binding, ledger, stage="auto")
    assert str(err.value).startswith("approval gate refused the change at stage trial_run (stages before it) (1 problem(s))")
    assert err.value.report.pending_stages == ["trial_run", "go_live"]


def test_trial_run_of_a_completed_change_is_refused(world, tmp_path):
    binding = go_live(world)
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as ledger:
        ledger.mark_completed("CHG-1001")
        report = check(world, world.evidence(binding=binding, without=LATER), "trial_run", ledger=ledger)
    assert "change CHG-1001 already completed at" in problems_of(report)
