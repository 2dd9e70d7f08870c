"""The register's storage on real SQLite and a real PostgreSQL: migrations, durability, append-only
guards, and verification that detects and locates every kind of tampering."""
import json
import threading

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError, RegisterError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import (
    entry_hash, generate_key, make_checkpoint, verify_entries, write_anchor, GENESIS
)
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import canonical_json
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import MIGRATIONS, SCHEMA_VERSION, open_store
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import RegisterWriter, tail_check, verify_register


def _body(i, run="r1"):
    return canonical_json({"kind": "outcome", "run": run, "ts": f"2026-01-01T00:00:{i % 60:02d}Z", "host": f"h{i % 3}",
                           "task": f"task {i}", "task_uuid": f"u{i}", "module": "ansible.builtin.copy", "status": "ok",
                           "changed": True})


@pytest.fixture
def store(register_url):
    s = open_store(register_url)
    s.migrate()
    yield s
    s.close()


def _raw(store, sql, params=()):
    """Run SQL as an attacker with direct database access (the guards dropped first by the caller)."""
    return store._execute(store._sql(sql), params)  # pylint: disable=protected-access


def _drop_guards(store):
    if store.backend == "sqlite":
        _raw(store, "DROP TRIGGER register_entries_no_update")
        _raw(store, "DROP TRIGGER register_entries_no_delete")
    else:
        _raw(store, "DROP TRIGGER register_entries_no_change ON register_entries")


def _fill(store, key, n=10):
    """n entries, a signed checkpoint, 4 more entries, a second checkpoint (seq n+6)."""
    store.append([_body(i) for i in range(1, n + 1)])
    rid = store.register_id()
    seq, head = store.head()
    store.append([canonical_json(make_checkpoint(key, rid, seq, head))])
    store.append([_body(i) for i in range(n + 1, n + 5)])
    seq, head = store.head()
    store.append([canonical_json(make_checkpoint(key, rid, seq, head))])
    return store.head()


def _verify(store, key, anchors=()):
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import key_id, public_key_b64  # pylint: disable=import-outside-toplevel
    pub = public_key_b64(key)
    return verify_register(store, trusted_keys={key_id(pub): pub}, anchor_paths=anchors)


def _rehash_from(store, start):
    """What a capable attacker does after an edit: recompute every later hash so the chain links again."""
    rows = list(store.iter_rows(start=start))
    prev = store.row(start - 1)[2] if start > 1 else GENESIS
    for seq, _p, _h, body in rows:
        h = entry_hash(prev, body)
        _raw(store, "UPDATE register_entries SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, "x" + h[1:], seq))
        prev = h
    for seq, _p, _h, body in store.iter_rows(start=start):
        _raw(store, "UPDATE register_entries SET hash = ? WHERE seq = ?", (entry_hash(_p, body), seq))


@pytest.fixture
def key(tmp_path):
    return generate_key(str(tmp_path / "k" / "signing.key"))


def test_migrations_are_versioned_and_idempotent(store):
    versions = [r[0] for r in _raw(store, "SELECT version FROM register_migrations ORDER BY version")]
    assert versions == [m[0] for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))
    assert store.migrate() == []
    assert store.schema_version() == SCHEMA_VERSION
    rid = store.register_id()
    assert len(rid) == 36 and store.migrate() == [] and store.register_id() == rid


def test_durability_settings_are_the_documented_ones(store):
    if store.backend == "sqlite":
        assert _raw(store, "PRAGMA journal_mode")[0][0] == "wal"
        assert _raw(store, "PRAGMA synchronous")[0][0] == 1  # NORMAL for entries
        with store.durable_commit():
            assert _raw(store, "PRAGMA synchronous")[0][0] == 2  # FULL for checkpoints
        assert _raw(store, "PRAGMA synchronous")[0][0] == 1
        import os  # pylint: disable=import-outside-toplevel
        assert oct(os.stat(store.path).st_mode & 0o777) == "0o600"
    else:
        assert _raw(store, "SHOW synchronous_commit")[0][0] == "on"


def test_append_chains_and_guards_refuse_update_and_delete(store):
    rows = store.append([_body(1), _body(2)])
    assert [r[0] for r in rows] == [1, 2]
    assert rows[0][1] == GENESIS and rows[1][1] == rows[0][2] == entry_hash(GENESIS, rows[0][3])
    for sql in ("UPDATE register_entries SET body = 'x' WHERE seq = 1", "DELETE FROM register_entries WHERE seq = 2"):
        with pytest.raises(Exception, match="append-only"):
            with store._write_txn():  # pylint: disable=protected-access
                _raw(store, sql)
    assert store.head()[0] == 2


def test_the_single_use_ledger_lives_in_the_register_on_both_backends(store):
    """Issue 11: consumed nonces are recorded once, with the gate's decision appended in the same transaction."""
    ledger = Ledger(store)
    ledger.consume(["n" * 16], "CHG-1", decision={"change_id": "CHG-1", "consumed": True})
    with pytest.raises(ApprovalError, match="replay refused"):
        ledger.consume(["m" * 16, "n" * 16], "CHG-2", decision={"change_id": "CHG-2", "consumed": True})
    assert ledger.consumed(["m" * 16, "n" * 16]).keys() == {"n" * 16}
    decisions = [json.loads(b) for dummy, b in store.bodies(like='%"kind":"gate_decision"%')]
    assert [d["change_id"] for d in decisions] == ["CHG-1"]  # the refused consumption left no decision
    assert ledger.mark_completed("CHG-1") and not ledger.mark_completed("CHG-1")


def test_intact_register_verifies(store, key):
    _fill(store, key)
    report = _verify(store, key)
    assert report["ok"], report["problems"]
    assert report["entries"] == 16 and report["checkpoints"] == 2 and report["unsigned_tail"] == 0


def test_edited_field_is_detected_and_located(store, key):
    _fill(store, key)
    _drop_guards(store)
    body = json.loads(store.row(5)[3])
    body["host"] = "someone-else"
    _raw(store, "UPDATE register_entries SET body = ? WHERE seq = 5", (canonical_json(body),))
    report = _verify(store, key)
    assert not report["ok"]
    assert report["first_problem"]["kind"] == "altered" and report["first_problem"]["seq"] == 5


def test_edit_with_rehashed_chain_is_caught_by_the_signed_checkpoint(store, key):
    _fill(store, key)
    _drop_guards(store)
    body = json.loads(store.row(3)[3])
    body["changed"] = False
    _raw(store, "UPDATE register_entries SET body = ? WHERE seq = 3", (canonical_json(body),))
    _rehash_from(store, 3)
    report = _verify(store, key)
    assert not report["ok"]
    assert report["first_problem"]["kind"] == "bad_checkpoint" and report["first_problem"]["seq"] == 11


def test_deleted_entry_is_detected_and_located(store, key):
    _fill(store, key)
    _drop_guards(store)
    _raw(store, "DELETE FROM register_entries WHERE seq = 7")
    report = _verify(store, key)
    assert report["first_problem"]["kind"] == "missing" and report["first_problem"]["seq"] == 7


def test_inserted_entry_is_detected_and_located(store, key):
    _fill(store, key)
    _drop_guards(store)
    # shift entries 4.. up by one (highest first) and forge a well-formed entry at 4
    for seq, in sorted(_raw(store, "SELECT seq FROM register_entries WHERE seq >= 4"), reverse=True):
        _raw(store, "UPDATE register_entries SET seq = ? WHERE seq = ?", (seq + 1, seq))
    prev = store.row(3)[2]
    forged = _body(99)
    _raw(store, "INSERT INTO register_entries (seq, prev_hash, hash, body) VALUES (?, ?, ?, ?)",
         (4, prev, entry_hash(prev, forged), forged))
    report = _verify(store, key)
    assert report["first_problem"]["kind"] == "inserted" and report["first_problem"]["seq"] == 4, report["problems"]


def test_swapped_entries_are_detected_as_reordering(store, key):
    _fill(store, key)
    _drop_guards(store)
    a, b = store.row(4), store.row(5)
    _raw(store, "UPDATE register_entries SET seq = 1000 WHERE seq = 4")
    _raw(store, "UPDATE register_entries SET seq = 4 WHERE seq = 5")
    _raw(store, "UPDATE register_entries SET seq = 5 WHERE seq = 1000")
    assert store.row(4)[2] == b[2] and store.row(5)[2] == a[2]
    report = _verify(store, key)
    assert report["first_problem"]["kind"] == "reordered" and report["first_problem"]["seq"] == 4, report["problems"]


def test_truncated_tail_is_detected_with_the_anchor(store, key, tmp_path):
    _fill(store, key)
    seq = store.head()[0]
    anchor = str(tmp_path / "anchor.json")
    write_anchor(anchor, json.loads(store.row(seq)[3]), seq)
    assert _verify(store, key, [anchor])["ok"]
    _drop_guards(store)
    _raw(store, "DELETE FROM register_entries WHERE seq >= 12")  # the last run and its checkpoint
    report = _verify(store, key, [anchor])
    assert report["first_problem"]["kind"] == "truncated", report["problems"]
    assert "register ends at entry 11" in report["first_problem"]["message"]
    assert tail_check(store, anchor)[0].startswith("tail truncated")


def test_bad_and_untrusted_checkpoint_signatures(store, key, tmp_path):
    _fill(store, key)
    _drop_guards(store)
    cp = json.loads(store.row(16)[3])
    cp["signature"] = cp["signature"][:-4] + ("AAA=" if not cp["signature"].endswith("AAA=") else "BBB=")
    _raw(store, "UPDATE register_entries SET body = ?, hash = ? WHERE seq = 16",
         (canonical_json(cp), entry_hash(store.row(16)[1], canonical_json(cp))))
    report = _verify(store, key)
    assert report["first_problem"]["kind"] == "bad_signature" and report["first_problem"]["seq"] == 16
    # a checkpoint correctly signed by a key nobody trusts
    other = generate_key(str(tmp_path / "other.key"))
    cp2 = make_checkpoint(other, store.register_id(), 15, store.row(15)[2])
    _raw(store, "UPDATE register_entries SET body = ?, hash = ? WHERE seq = 16",
         (canonical_json(cp2), entry_hash(store.row(16)[1], canonical_json(cp2))))
    report = _verify(store, key)
    assert report["first_problem"]["kind"] == "untrusted_key" and report["first_problem"]["seq"] == 16


def test_writer_preflight_refuses_a_tampered_head(register_url, tmp_path):
    keyfile = str(tmp_path / "w" / "signing.key")
    w = RegisterWriter(url=register_url, signing_key=keyfile, anchor=str(tmp_path / "a-{register_id}.json"),
                       journal_dir=str(tmp_path / "j"))
    w.preflight({"kind": "run_open", "run": "r1", "ts": "t"})
    w.append([json.loads(_body(1))])
    assert w.checkpoint() == 3
    w.append([{"kind": "run_close", "run": "r1", "ts": "t"}])
    w.close()
    s = open_store(register_url)
    _drop_guards(s)
    _raw(s, "UPDATE register_entries SET body = ? WHERE seq = 4", (canonical_json({"kind": "run_close", "run": "evil"}),))
    s.close()
    w2 = RegisterWriter(url=register_url, signing_key=keyfile, anchor=str(tmp_path / "a-{register_id}.json"),
                        journal_dir=str(tmp_path / "j"))
    with pytest.raises(RegisterError, match="failed its integrity check: entry 4 was altered"):
        w2.preflight({"kind": "run_open", "run": "r2", "ts": "t"})
    w2.close()


def test_concurrent_writers_on_postgresql_stay_one_chain(pg_url):
    """Eight connections appending at once: one linear chain, nothing lost, nothing duplicated."""
    threads, per_thread = 8, 60
    errors = []

    def writer(t):
        try:
            with open_store(pg_url) as s:
                s.migrate()
                for i in range(per_thread):
                    s.append([_body(i, run=f"t{t}")] if i % 3 else [_body(i, run=f"t{t}"), _body(1000 + i, run=f"t{t}")])
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)
    ts = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    with open_store(pg_url) as s:
        rows = list(s.iter_rows())
        report = verify_entries(rows, s.register_id(), lookup=s.lookup)
    assert report["ok"], report["problems"]
    per_run = {}
    for _seq, _p, _h, body in rows:
        per_run[json.loads(body)["run"]] = per_run.get(json.loads(body)["run"], 0) + 1
    assert per_run == {f"t{t}": per_thread + per_thread // 3 for t in range(threads)}
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))


def test_concurrent_writers_on_one_sqlite_file_stay_one_chain(tmp_path):
    """Several controllers' processes on one SQLite file: the optimistic append re-chains on conflict."""
    path = str(tmp_path / "shared.db")
    with open_store(path) as s:
        s.migrate()
    errors = []

    def writer(t):
        try:
            with open_store(path) as s:
                for i in range(80):
                    s.append([_body(i, run=f"s{t}")] if i % 4 else [_body(i, run=f"s{t}"), _body(500 + i, run=f"s{t}")])
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)
    ts = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    with open_store(path) as s:
        rows = list(s.iter_rows())
        report = verify_entries(rows, s.register_id(), lookup=s.lookup)
    assert report["ok"], report["problems"]
    assert len(rows) == 4 * (80 + 20)
