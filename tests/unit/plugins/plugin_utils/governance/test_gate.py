"""One test (at least) per rule of the approval gate: signatures, binding, quorum, order, SoD, replay."""
import base64
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import ARTIFACT, World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import approvals, dsse  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.approvals import load_evidence  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.gate import GateRefused, run_gate, verify_evidence  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger  # noqa: E402


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


def check(world, envelopes, binding=None, ledger=None, now=None):
    return verify_evidence(world.policy(), envelopes, binding or world.binding(), now=now, ledger=ledger)


def problems_of(report):
    return "\n".join(report.problems)


def test_complete_evidence_passes(world):
    report = check(world, world.evidence())
    assert report.problems == []
    assert report.ok
    assert report.implementers == ["ivan", "jane"] and report.supervisor == "sam"
    first = report.valid[0]
    assert first.issued_at.tzinfo is not None and first["stage"] == first.stage
    assert {a.stage for a in report.counted} == set(report.required_stages)


def test_plan_submission_carries_issued_at_and_planned_start(world):
    report = check(world, world.evidence())
    plan = [a for a in report.valid if a.stage == "plan_submission"][0]
    assert plan.planned_start > plan.issued_at


def _tamper(envelope, field, func):
    env = dict(envelope)
    env[field] = func(env[field])
    return env


def test_forged_signature_is_refused(world):
    envs = world.evidence()
    sig = bytearray(base64.b64decode(envs[0]["signatures"][0]["sig"]))
    sig[5] ^= 0x01
    envs[0] = dict(envs[0], signatures=[{"keyid": envs[0]["signatures"][0]["keyid"], "sig": base64.b64encode(bytes(sig)).decode()}])
    report = check(world, envs)
    assert "signature does not verify (forged or altered after signing)" in problems_of(report)
    assert not report.ok


def test_altered_payload_is_refused(world):
    envs = world.evidence()
    statement = json.loads(base64.b64decode(envs[0]["payload"]))
    statement["predicate"]["version"] = "9.9.9"
    envs[0] = dict(envs[0], payload=base64.b64encode(json.dumps(statement).encode()).decode())
    assert "signature does not verify" in problems_of(check(world, envs))


def test_unknown_key_is_refused(world):
    stranger = dsse.generate_private_key()
    envs = world.evidence(skip={("go_live", "coo", "carol")})
    envs.append(world.approve("go_live", "coo", "carol", key=stranger))
    text = problems_of(check(world, envs))
    assert "signed by unknown key" in text and "add the signer's public key to the policy" in text
    assert "stage go_live: approval for role coo is missing: need 1 of [carol, cody]" in text


def test_revoked_key_is_refused(world):
    envs = world.evidence(replace={("go_live", "risk_compliance"): ["rex"]})
    assert "key {} of rex is revoked".format(dsse.keyid_of(dsse.public_key_hex(world.keys["rex"].public_key()))[:16]) in problems_of(check(world, envs))


def test_expired_approval_is_refused(world):
    envs = world.evidence()
    report = check(world, envs, now=world.now + timedelta(days=3))
    assert "expired at" in problems_of(report)


def test_not_yet_valid_approval_is_refused(world):
    envs = world.evidence(skip={("go_live", "coo", "carol")})
    envs.append(world.approve("go_live", "coo", "carol", not_before=world.now + timedelta(hours=1), offset_minutes=40))
    assert "not valid before" in problems_of(check(world, envs))


@pytest.mark.parametrize("field,value", [("system", "crm"), ("change_id", "CHG-9"), ("version", "3.2.2"),
                                         ("environment", "staging"), ("change_type", "non_routine")])
def test_approval_for_another_change_is_refused(world, field, value):
    envs = world.evidence()
    binding = world.binding(**{field: value})
    text = problems_of(check(world, envs, binding=binding))
    assert f"but this run is {field} {value!r}" in text


def test_wrong_artifact_digest_is_refused(world):
    other = "6" * 64
    envs = world.evidence()
    text = problems_of(check(world, envs, binding=world.binding(artifacts=[other])))
    assert f"does not approve artifact sha256:{other}" in text


def test_artifact_file_is_hashed(world, tmp_path):
    pkg = tmp_path / "ta-core-3.2.1.tar.gz"
    pkg.write_bytes(b"release")
    binding = world.binding(artifacts=[str(pkg)])
    envs = world.evidence(binding=binding)
    assert check(world, envs, binding=world.binding(artifacts=[approvals.artifact_digest(str(pkg))])).ok


def test_change_type_with_release_needs_an_artifact(world):
    binding = world.binding(artifacts=[])
    assert "names no artifact" in problems_of(check(world, world.evidence(binding=binding), binding=binding))


def test_targets_must_be_covered(world):
    envs = world.evidence()
    text = problems_of(check(world, envs, binding=world.binding(targets=["app1", "app2", "db9"])))
    assert "does not cover target host(s) db9" in text


def test_target_globs_cover_hosts(world):
    signed = world.binding(targets=["app*"])
    envs = world.evidence(binding=signed)
    assert check(world, envs, binding=world.binding(targets=[f"app{i}" for i in range(50)])).ok


def test_missing_role_is_listed_with_candidates_and_fix(world):
    envs = world.evidence(skip={("go_live", "risk_compliance", "rita")})
    text = problems_of(check(world, envs))
    assert "stage go_live: approval for role risk_compliance is missing: need 1 of [dual, olga, rita]" in text
    assert "sign with `prodgate approve --stage go_live --role risk_compliance" in text


def test_quorum_of_review_panel_not_met(world):
    envs = world.evidence(skip={("internal_review", "review_panel", "rev2")})
    text = problems_of(check(world, envs))
    assert "stage internal_review: approval for role review_panel is missing: need 2 of [rev2, rev3] (have 1: rev1)" in text


def test_same_person_twice_counts_once(world):
    envs = world.evidence(replace={("internal_review", "review_panel"): ["rev1", "rev1"]})
    assert "need 2 of [rev2, rev3] (have 1: rev1)" in problems_of(check(world, envs))


def test_two_implementers_are_needed_in_production(world):
    envs = world.evidence(skip={("implementer_ack", "it_ops", "jane")})
    report = check(world, envs, binding=world.binding(launcher="ivan"))
    assert "approval for role it_ops is missing: need 2" in problems_of(report)
    assert "Art. 27" in problems_of(report)


def test_one_person_in_two_roles_is_refused(world):
    envs = world.evidence(replace={("go_live", "risk_compliance"): ["olga"], ("go_live", "business_owner"): ["olga"],
                                   ("trial_run", "business_owner"): ["olga"]})
    text = problems_of(check(world, envs))
    assert "separation of duties: olga counts for two roles: business_owner (go_live/trial_run), risk_compliance (go_live)" in text


def test_implementer_who_is_also_an_approver_is_refused(world):
    envs = world.evidence(replace={("go_live", "risk_compliance"): ["dual"], ("implementer_ack", "it_ops"): ["ivan", "dual"]})
    text = problems_of(check(world, envs))
    assert "separation of duties: dual is an implementer and also an approver" in text


def test_role_not_held_is_refused(world):
    envs = world.evidence(skip={("go_live", "coo", "carol")})
    envs.append(world.approve("go_live", "coo", "rita", offset_minutes=40))
    assert "rita does not hold role coo" in problems_of(check(world, envs))


def test_role_that_does_not_sign_the_stage_is_refused(world):
    envs = world.evidence()
    envs.append(world.approve("go_live", "it_head", "henry", offset_minutes=40))
    assert "role it_head does not sign stage go_live" in problems_of(check(world, envs))


def test_key_of_another_person_is_refused(world):
    envs = world.evidence(skip={("go_live", "coo", "carol")})
    envs.append(world.approve("go_live", "coo", "carol", key=world.keys["cody"], offset_minutes=40))
    assert "signed with a key of cody, not of carol" in problems_of(check(world, envs))


def test_launcher_must_be_an_implementer(world):
    text = problems_of(check(world, world.evidence(), binding=world.binding(launcher="sam")))
    assert "launcher sam is not one of the implementers [ivan, jane]" in text


def test_launcher_login_maps_to_person(world):
    assert check(world, world.evidence(), binding=world.binding(launcher="jane.l")).ok


def test_declared_team_must_have_acknowledged(world):
    text = problems_of(check(world, world.evidence(), binding=world.binding(implementers=["ivan", "ken"], supervisor="sam")))
    assert "declared implementer ken (prodgate_implementers) has no valid implementer_ack" in text
    assert "jane acknowledged as implementer but is not in prodgate_implementers" in text


def test_stage_order_trial_run_before_go_live(world):
    envs = [e for e in world.evidence() if json.loads(base64.b64decode(e["payload"]))["predicate"]["stage"] != "go_live"]
    for role, person in (("business_owner", "bella"), ("risk_compliance", "rita"), ("coo", "carol"), ("president_office", "pam")):
        envs.append(world.approve("go_live", role, person, offset_minutes=-60))
    text = problems_of(check(world, envs))
    assert "stage order: go_live was signed by bella" in text and "before trial_run was complete" in text


def test_duplicate_nonce_in_bundle_is_refused(world):
    envs = world.evidence()
    envs.append(dict(envs[0]))
    assert "also used by" in problems_of(check(world, envs))


def test_rejection_blocks_the_change(world):
    envs = world.evidence()
    envs.append(world.approve("go_live", "coo", "cody", offset_minutes=45, decision="reject", reason="risk too high"))
    assert "cody (coo) signed a rejection: risk too high" in problems_of(check(world, envs))


def test_emergency_needs_override_with_reason(world):
    binding = world.binding(emergency=True)
    envs = world.evidence(binding=binding, emergency=True)
    report = check(world, envs, binding=binding)
    assert report.ok, report.problems
    override = [a for a in report.valid if a.stage == "emergency_override"][0]
    assert override.reason == "payment outage hot fix"
    no_override = [e for e in envs if json.loads(base64.b64decode(e["payload"]))["predicate"]["stage"] != "emergency_override"]
    assert "emergency override is missing" in problems_of(check(world, no_override, binding=binding))
    without_reason = no_override + [world.approve("emergency_override", "coo", "carol", binding=binding)]
    assert "an emergency override needs a reason" in problems_of(check(world, without_reason, binding=binding))


def test_emergency_override_window_is_bounded(world):
    binding = world.binding(emergency=True)
    envs = world.evidence(binding=binding, emergency=True, skip={("emergency_override", "coo", "carol")})
    envs.append(world.approve("emergency_override", "coo", "carol", binding=binding, reason="outage"))  # 5-day window
    assert "valid for at most 24 hours" in problems_of(check(world, envs, binding=binding))


def test_gate_consumes_nonces_once(world, tmp_path):
    envs = world.evidence()
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as ledger:
        result = run_gate(world.policy(), envs, world.binding(), ledger)
        assert result["change_id"] == "CHG-1001" and len(result["approvals"]) == 13
        assert set(result["approvals"][0]) >= {"stage", "role", "person", "issued_at", "key_id"}
        with pytest.raises(GateRefused) as err:
            run_gate(world.policy(), envs, world.binding(), ledger)
        assert "replay refused, nonce" in str(err.value)


def test_check_mode_does_not_consume(world, tmp_path):
    envs = world.evidence()
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as ledger:
        assert run_gate(world.policy(), envs, world.binding(), ledger, consume=False)["consumed"] is False
        assert run_gate(world.policy(), envs, world.binding(), ledger)["consumed"] is True


def test_completed_change_is_refused(world, tmp_path):
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as ledger:
        ledger.mark_completed("CHG-1001")
        report = check(world, world.evidence(), ledger=ledger)
        assert "change CHG-1001 already completed at" in problems_of(report)


def test_ledger_consume_is_all_or_nothing(tmp_path):
    with Ledger.open(str(tmp_path / "l.sqlite")) as ledger:
        ledger.consume(["a" * 16], "C1")
        with pytest.raises(ApprovalError, match="already consumed"):
            ledger.consume(["b" * 16, "a" * 16], "C2")
        assert not ledger.is_consumed("b" * 16) and ledger.is_consumed("a" * 16)
        assert ledger.mark_completed("C1") and not ledger.mark_completed("C1") and ledger.is_completed("C1")


def test_load_evidence_accepts_folder_bundle_and_list(world, tmp_path):
    envs = world.evidence()
    folder = world.write_evidence(envs)
    assert len(load_evidence(folder)) == len(envs)
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"envelopes": envs}))
    assert len(load_evidence(bundle)) == len(envs)
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(envs))
    assert check(world, load_evidence(listed)).ok
    (Path(folder) / "zz.json").write_text("{not json")
    assert "not a DSSE envelope" in problems_of(check(world, load_evidence(folder)))
    with pytest.raises(ApprovalError, match="does not exist"):
        load_evidence(tmp_path / "nothing")


def test_binding_without_change_id_is_refused(world):
    report = check(world, world.evidence(), binding={**world.binding(), "change_id": ""})
    assert "the run does not say its change_id" in problems_of(report)


def test_artifact_must_be_digest_or_file():
    with pytest.raises(ApprovalError, match="neither a sha256 digest nor a readable file"):
        approvals.artifact_digest("not-a-file")
    assert approvals.artifact_digest("sha256:" + ARTIFACT.upper()) == ARTIFACT
