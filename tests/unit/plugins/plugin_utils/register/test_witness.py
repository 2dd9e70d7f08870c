"""Witnesses of the register's checkpoints (register/witness.py): an append-only file of every
checkpoint, syslog, the newest witnessed checkpoint, a torn last line, an altered witness."""
import json

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import RegisterError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.witness import (
    default_witness, latest_witnessed, parse_witnesses, read_witness, witness_checkpoint)


def test_the_spec_names_files_per_register_and_syslog_facilities(tmp_path):
    spec = f"{tmp_path}/w-{{register_id}}.jsonl, syslog:local3,syslog"
    assert parse_witnesses(spec, "abc") == [("file", f"{tmp_path}/w-abc.jsonl"), ("syslog", "local3"), ("syslog", "user")]
    assert parse_witnesses("", "abc") == []
    with pytest.raises(RegisterError, match="unknown syslog facility 'local9'"):
        parse_witnesses("syslog:local9", "abc")
    assert default_witness(f"{tmp_path}/anchor-{{register_id}}.json") == f"{tmp_path}/witness-{{register_id}}.jsonl"


def test_every_checkpoint_is_kept_and_the_newest_is_the_latest_witnessed(tmp_path):
    witnesses = [("file", str(tmp_path / "logs" / "w.jsonl"))]
    assert witness_checkpoint(witnesses, {"count": 3, "head": "aa"}, 3, protect=False) == []
    assert witness_checkpoint(witnesses, {"count": 7, "head": "bb"}, 7, protect=False) == []
    kept = read_witness(str(tmp_path / "logs" / "w.jsonl"))
    assert [(n, cp["seq"], cp["head"]) for n, cp in kept] == [(1, 3, "aa"), (2, 7, "bb")]
    (name, newest), = latest_witnessed(witnesses)
    assert newest["count"] == 7 and name.endswith("w.jsonl line 2")
    assert read_witness(str(tmp_path / "absent.jsonl")) == []


def test_a_torn_last_line_is_ignored_an_altered_line_is_refused(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"seq": 3}) + "\n" + '{"seq": 7, "he')
    assert [cp["seq"] for dummy_n, cp in read_witness(str(path))] == [3]
    path.write_text("garbage\n" + json.dumps({"seq": 7}) + "\n")
    with pytest.raises(RegisterError, match="line 1 is not JSON .*the witness was altered"):
        read_witness(str(path))


def test_a_witness_that_cannot_be_written_is_reported_not_ignored(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    problems = witness_checkpoint([("file", str(blocker / "w.jsonl"))], {"count": 1}, 1, protect=False)
    assert len(problems) == 1 and problems[0].startswith(f"witness {blocker}/w.jsonl:")
