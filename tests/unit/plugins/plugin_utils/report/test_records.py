"""Signed records (report/records.py): the Art. 20(7) MLPS filing, the Art. 23-24 failure analysis and
attested evidence. A record verifies only when signed by a current key of the person it names, in a
role allowed to sign it; a forged, altered or replayed envelope is refused with the file named."""
import base64
import json
from datetime import datetime, timezone

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.report.records import (
    KINDS, RECORD_PAYLOAD_TYPE, RecordError, load_records, make_record, sign_record, verify_records)

from ..register.register_world import World


@pytest.fixture(name="world", scope="module")
def fixture_world(tmp_path_factory):
    return World(tmp_path_factory.mktemp("records"))


def analysis(world, person="paula", **over):
    fields = dict({"change_id": "CHG-1002", "cause": "the migration locked the ledger table",
                   "action": "run migrations in the trial run", "owner": "jane"}, **over)
    return sign_record(make_record("failure_analysis", person, fields,
                                   signed_at=datetime(2026, 3, 5, 9, 0, tzinfo=timezone.utc)), world.keys[person])


def filing(world, person="rita"):
    return sign_record(make_record("mlps_filing", person, {"system": "ta-core", "filed_on": "2026-03-20",
                                                           "reference": "MLPS-2026-0042"}), world.keys[person])


def test_signed_records_verify_and_carry_their_signer(world):
    good, problems = verify_records(world.policy(), [dict(analysis(world), _source="a.json"),
                                                     dict(filing(world), _source="f.json")])
    assert problems == []
    fa, mlps = good
    assert (fa["kind"], fa["signer"], fa["change_id"], fa["source"]) == ("failure_analysis", "paula", "CHG-1002", "a.json")
    assert fa["signed_at"] == "2026-03-05T09:00:00+00:00" and len(fa["key_id"]) == 64
    assert (mlps["kind"], mlps["signer"], mlps["reference"]) == ("mlps_filing", "rita", "MLPS-2026-0042")


def test_an_altered_record_is_refused(world):
    env = analysis(world)
    record = json.loads(base64.b64decode(env["payload"]))
    record["cause"] = "a cosmic ray"
    env["payload"] = base64.b64encode(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).decode()
    good, problems = verify_records(world.policy(), [dict(env, _source="records/a.json")])
    assert good == [] and problems == [
        "records/a.json: no signature verifies with a current key of a person in the signed policy"]


def test_a_record_signed_with_a_key_not_in_the_policy_is_refused(world, tmp_path):
    stranger = World(tmp_path / "stranger")
    good, problems = verify_records(world.policy(), [dict(analysis(stranger), _source="x.json")])
    assert good == [] and "no signature verifies with a current key" in problems[0]


def test_a_revoked_key_does_not_sign_records(world):
    env = sign_record(make_record("mlps_filing", "rex", {"system": "ta-core", "filed_on": "2026-03-20",
                                                         "reference": "R-1"}), world.keys["rex"])
    good, problems = verify_records(world.policy(), [dict(env, _source="rex.json")])
    assert good == [] and "no signature verifies with a current key" in problems[0]


def test_a_failure_analysis_is_signed_by_the_it_project_manager_only(world):
    assert KINDS["failure_analysis"][1] == ("it_pm",)
    good, problems = verify_records(world.policy(), [dict(analysis(world, person="ivan"), _source="ivan.json")])
    assert good == [] and problems == ["ivan.json: a failure_analysis must be signed by it_pm; ivan holds it_ops"]


def test_a_record_naming_another_person_than_its_signer_is_refused(world):
    env = sign_record(make_record("mlps_filing", "rita", {"system": "ta-core", "filed_on": "2026-03-20",
                                                          "reference": "R"}), world.keys["carol"])
    good, problems = verify_records(world.policy(), [dict(env, _source="c.json")])
    assert good == [] and problems == ["c.json: signed by carol, but the record names rita"]


def test_an_approval_is_not_accepted_as_a_record(world):
    approval = world.approve("change_approval", "it_head", "henry")
    good, problems = verify_records(world.policy(), [dict(approval, _source="approval.json")])
    assert good == [] and problems[0].startswith("approval.json: payload type application/vnd.in-toto+json")
    assert f"expected {RECORD_PAYLOAD_TYPE}" in problems[0]


def test_records_need_their_fields_and_a_known_kind():
    with pytest.raises(RecordError, match="a failure_analysis record needs cause, owner"):
        make_record("failure_analysis", "paula", {"change_id": "CHG-1", "cause": " ", "action": "x"})
    with pytest.raises(RecordError, match="unknown record kind 'approval': one of mlps_filing, failure_analysis, evidence"):
        make_record("approval", "paula", {})


def test_load_records_reads_json_files_and_reports_a_broken_one(world, tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(analysis(world)), encoding="utf-8")
    (folder / "b.json").write_text("{not json", encoding="utf-8")
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")
    envelopes = load_records(str(folder))
    assert [e["_source"] for e in envelopes] == [str(folder / "a.json"), str(folder / "b.json")]
    good, problems = verify_records(world.policy(), envelopes)
    assert [g["change_id"] for g in good] == ["CHG-1002"]
    assert len(problems) == 1 and problems[0].startswith(f"{folder / 'b.json'}: not JSON (")
    assert load_records(str(tmp_path / "none")) == [] and load_records(None) == []
