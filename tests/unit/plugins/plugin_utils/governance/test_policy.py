"""The signed policy: signatures, threshold, expiry, schema errors, the Art. 20 matrix as data."""
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse, policy as policy_mod  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy_schema  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError, PolicyError  # noqa: E402


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


def test_signed_policy_loads_and_passes_foreign_sections_through(world):
    pol = world.policy()
    assert pol.version == 1
    assert len(pol.signed_by) == 2
    assert pol.raw["freeze_windows"] == [] and pol.freeze_windows == []
    assert pol.lead_time_working_days == 3
    assert pol.calendar == {} and pol.register == {}
    assert pol.roles["review_panel"] == 2 and pol.roles["it_ops"] == 2


def test_foreign_sections_are_kept_untouched(tmp_path):
    extra = {"calendar": {"timezone": "Asia/Shanghai"}, "register": {"backend": "sqlite"},
             "freeze_windows": [{"name": "year-end", "kind": "deny", "start": "2026-12-31T00:00:00+08:00",
                                 "end": "2027-01-01T00:00:00+08:00"}],
             "lead_time_working_days": 5}
    world = World(tmp_path, overrides=extra)
    pol = world.policy()
    assert pol.calendar == extra["calendar"] and pol.register == extra["register"]
    assert pol.freeze_windows == extra["freeze_windows"]
    assert pol.lead_time_working_days == 5


def test_unsigned_policy_is_refused(tmp_path):
    world = World(tmp_path, sign=False)
    with pytest.raises(PolicyError, match=r"is not signed: it needs 2 governance signature\(s\).*prodgate policy sign"):
        world.policy()


def test_altered_policy_is_refused(world):
    text = Path(world.policy_path).read_text(encoding="utf-8")
    Path(world.policy_path).write_text(text.replace("threshold: 2", "threshold: 1", 1), encoding="utf-8")
    with pytest.raises(PolicyError, match="altered after signing"):
        world.policy()


def test_one_signature_is_below_the_threshold(world):
    world.sign_policy(signers=world.gov_keys[:1])
    with pytest.raises(PolicyError, match=r"1 valid governance signature\(s\), need 2"):
        world.policy()


def test_signature_by_a_non_governance_key_does_not_count(world):
    world.sign_policy(signers=[world.gov_keys[0], world.keys["carol"]])
    with pytest.raises(PolicyError, match="need 2"):
        world.policy()


def test_expired_policy_is_refused(world):
    with pytest.raises(PolicyError, match="expired at .*issue a new version"):
        world.policy(at=world.now + timedelta(days=91))


def test_schema_errors_name_file_path_and_fix(tmp_path):
    world = World(tmp_path, sign=False)
    world.doc["systems"][0]["category"] = "core"
    world.doc["people"][0]["roles"] = ["wizard"]
    world.sign_policy()
    with pytest.raises(PolicyError) as err:
        world.policy()
    text = str(err.value)
    assert world.policy_path in text
    assert "systems[0].category: 'core' is not one of [it_infrastructure" in text
    assert "people[0].roles[0]: role 'wizard' has no entry under roles" in text
    assert "re-sign with `prodgate policy sign`" in text


def test_duplicate_ids_and_a_key_shared_by_two_people_are_named(tmp_path):
    world = World(tmp_path, sign=False)
    world.doc["systems"].append(dict(world.doc["systems"][0]))
    world.doc["people"].append(dict(world.doc["people"][0], keys=[{"public_key": "00" * 32}]))
    world.doc["people"][1]["keys"] = list(world.doc["people"][0]["keys"])
    problems = policy_schema.validate_document(world.doc)
    last = len(world.doc["people"]) - 1
    assert f"systems[{len(world.doc['systems']) - 1}].id: duplicate system id {world.doc['systems'][0]['id']!r}" \
        in "\n".join(problems)
    assert any(p.startswith(f"people[{last}].id: duplicate person id {world.doc['people'][0]['id']!r}") for p in problems)
    assert any(p.startswith("people[1].keys[0]: the same key is also listed for " + world.doc["people"][0]["id"])
               for p in problems), problems


def test_unknown_top_level_section_is_an_error(tmp_path):
    world = World(tmp_path, overrides={"freze_windows": []})
    with pytest.raises(PolicyError, match="freze_windows: unknown top-level section"):
        world.policy()


def test_pinned_root_refuses_policy_signed_by_other_keys(world, tmp_path):
    other = dsse.generate_private_key()
    root = tmp_path / "root.yml"
    root.write_text(yaml.safe_dump({"threshold": 1, "keys": [{"holder": "x", "public_key": dsse.public_key_hex(other.public_key())}]}))
    with pytest.raises(PolicyError, match="signatures do not verify"):
        policy_mod.load_policy(world.policy_path, root=str(root))
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump({"governance": world.doc["governance"]}))
    assert policy_mod.load_policy(world.policy_path, root=str(good)).pinned


def test_required_stages_follow_the_art20_matrix(world):
    pol = world.policy()
    acks = ["implementer_ack", "supervisor_ack"]
    # core_business/custom: every step, strictly, also on upgrade (rehearsal)
    assert pol.required_stages("ta-core", "version_update", "production") == \
        ["plan_submission", "coo_approval", "internal_review", "trial_run", "go_live"] + acks
    # customer_service/product first go-live: COO -> internal review -> go-live
    assert pol.required_stages("crm", "initial_go_live", "production") == \
        ["plan_submission", "coo_approval", "internal_review", "go_live"] + acks
    # it_management/product
    assert pol.required_stages("wiki", "version_update", "production") == ["plan_submission", "coo_approval", "go_live"] + acks
    # routine operation: change approval, and the Art. 27 team in production only
    assert pol.required_stages("ta-core", "routine", "production") == ["change_approval"] + acks
    assert pol.required_stages("ta-core", "routine", "staging") == ["change_approval"]


def test_upgrade_path_drops_trial_run_where_not_strict(world):
    pol = world.policy()
    matrix = pol.rules["go_live_matrix"]
    assert "trial_run" in matrix["customer_service"]["custom"]["first"]
    assert "trial_run" not in matrix["customer_service"]["custom"]["upgrade"]


def test_matrix_is_overridable_in_the_policy(tmp_path):
    world = World(tmp_path, overrides={"go_live_matrix": {"it_management": {"product": {"first": ["go_live"], "upgrade": ["go_live"]}}}})
    pol = world.policy()
    assert pol.required_stages("wiki", "version_update", "production") == ["plan_submission", "go_live", "implementer_ack", "supervisor_ack"]
    # other categories keep the shipped default
    assert "internal_review" in pol.rules["go_live_matrix"]["core_business"]["product"]["first"]


def test_emergency_waives_listed_stages_but_never_go_live(world):
    pol = world.policy()
    stages = pol.required_stages("ta-core", "version_update", "production", emergency=True)
    assert "plan_submission" not in stages and "internal_review" not in stages and "trial_run" not in stages
    assert "go_live" in stages and "emergency_override" in stages and "implementer_ack" in stages


def test_emergency_cannot_waive_go_live(tmp_path):
    world = World(tmp_path, overrides={"emergency": {"authorisers": ["coo"], "threshold": 1, "waives": ["go_live"], "max_validity_hours": 4}})
    with pytest.raises(PolicyError, match=r"emergency.waives\[0\]: go_live can never be waived"):
        world.policy()


def test_unknown_system_and_environment_are_refused_with_the_choices(world):
    pol = world.policy()
    with pytest.raises(ApprovalError, match=r"system 'nope' is not in the policy's systems catalogue.*crm, ta-core, wiki"):
        pol.required_stages("nope", "routine", "production")
    with pytest.raises(ApprovalError, match="has no environment 'staging'"):
        pol.required_stages("wiki", "routine", "staging")


def test_sign_document_replaces_own_signature(world):
    doc = policy_mod.read_policy_document(world.policy_path)
    policy_mod.sign_document(doc, world.gov_keys[0])
    assert len(doc["signatures"]) == 2


def test_yaml_timestamps_stay_strings_so_signatures_are_stable(world):
    doc = policy_mod.read_policy_document(world.policy_path)
    assert isinstance(doc["expires"], str)
