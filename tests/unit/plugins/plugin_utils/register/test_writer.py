"""The register's writer as the callback drives it (register/writer.py): preflight, append, signed
checkpoints copied to the anchor and the witness, the journal when the register cannot be written,
and verify_register finding what was altered."""
import json
import os
import sqlite3

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import RegisterError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import (
    RegisterWriter, import_journal, pending_journals, read_journal, verify_register)


def run_open(run="r1"):
    return {"kind": "run_open", "run": run, "ts": "2026-01-01T00:00:00Z", "user": "ops", "check_mode": False}


def run_close(run="r1"):
    return {"kind": "run_close", "run": run, "ts": "2026-01-01T00:01:00Z", "stats": {}, "failed_hosts": []}


def writer(tmp_path, **kwargs):
    return RegisterWriter(url=str(tmp_path / "r.db"), signing_key=str(tmp_path / "k.pem"),
                          anchor=str(tmp_path / "anchor-{register_id}.json"), journal_dir=str(tmp_path / "journal"),
                          witness=str(tmp_path / "witness.jsonl"), **kwargs)


def one_run(tmp_path, run="r1"):
    w = writer(tmp_path)
    w.preflight(run_open(run))
    assert w.append([run_close(run)]) is True
    seq = w.checkpoint()
    return w, seq


def test_a_run_is_chained_signed_and_verifies_against_anchor_and_witness(tmp_path):
    w, seq = one_run(tmp_path)
    assert seq == 3 and os.path.exists(w.anchor)
    witnessed = [json.loads(line) for line in (tmp_path / "witness.jsonl").read_text().splitlines()]
    assert [cp["seq"] for cp in witnessed] == [3]
    report = verify_register(w.store, anchor_paths=[w.anchor], witnesses=w.witnesses)
    assert report["ok"] and report["head_seq"] == 3 and report["checkpoints"] == 1 and report["unsigned_tail"] == 0


def test_an_altered_entry_fails_verification_and_the_next_preflight(tmp_path):
    w, dummy_seq = one_run(tmp_path)
    w.store.close()
    with sqlite3.connect(tmp_path / "r.db") as conn:  # someone with the database file, past its append-only triggers
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        body = conn.execute("SELECT body FROM register_entries WHERE seq = 2").fetchone()[0]
        conn.execute("UPDATE register_entries SET body = ? WHERE seq = 2", (body.replace('"r1"', '"r9"'),))
    again = writer(tmp_path)
    with pytest.raises(RegisterError, match="failed its integrity check"):
        again.preflight(run_open("r2"))
    report = verify_register(again.store, anchor_paths=[again.anchor])
    assert not report["ok"] and report["first_problem"]


def test_a_register_that_cannot_be_written_journals_the_entries_for_a_later_import(tmp_path):
    w = writer(tmp_path)
    w.preflight(run_open())
    w.store.close()  # the register goes away mid-run
    assert w.append([run_close()]) is False and w.broken and w.checkpoint() is None
    journals = pending_journals(str(tmp_path / "journal"), w.register_id)
    assert len(journals) == 1 and json.loads(read_journal(journals[0])[0]["body"])["kind"] == "run_close"
    blocked = writer(tmp_path)
    with pytest.raises(RegisterError, match="1 journal\\(s\\) of an earlier register failure wait"):
        blocked.preflight(run_open("r2"))
    result = import_journal(blocked.store, journals[0])
    assert result["imported"] == 1 and not pending_journals(str(tmp_path / "journal"), w.register_id)
    kinds = [json.loads(body)["kind"] for dummy_seq, body in blocked.store.bodies()]
    assert kinds == ["run_open", "run_close", "journal_import"]
    assert verify_register(blocked.store)["ok"]


def test_an_altered_journal_is_refused_and_nothing_is_imported(tmp_path):
    w = writer(tmp_path)
    w.preflight(run_open())
    w.store.close()
    w.append([run_close(), run_close()])
    path = pending_journals(str(tmp_path / "journal"), w.register_id)[0]
    lines = open(path, encoding="utf-8").read().splitlines()
    first = json.loads(lines[0])
    first["body"] = first["body"].replace("r1", "r7")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    with pytest.raises(RegisterError, match="entry 1 breaks the journal's chain: it was altered"):
        read_journal(path)


def test_a_missing_signing_key_is_refused_once_the_register_has_checkpoints(tmp_path):
    dummy_w, dummy_seq = one_run(tmp_path)
    os.unlink(tmp_path / "k.pem")
    with pytest.raises(RegisterError, match="register signing key .* does not exist: restore it"):
        writer(tmp_path).preflight(run_open("r2"))
