"""The two register weaknesses of issue 13, tried as someone with write access to the register
database (and the controller's files) but no signing key:

* truncate the register and delete the anchor, or roll it back to an older checkpoint: the
  witness still holds every checkpoint, so ``prodgate register verify`` fails; with the witness
  gone too it exits 3 (nothing outside the register vouched for it), never 0;
* forge an entry after the last checkpoint: the next run's pre-flight refuses it before that
  run's checkpoint would sign it.

The register is written with the core writer the callback drives (pre-flight, append, checkpoint).
"""
import json
import os
import shutil
import sqlite3

import pytest

from register_helpers import prodgate
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import RegisterError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import canonical_json
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import RegisterWriter


def _run(env, run_id, n=3, close=True, checkpoint=True):
    """One run as the callback records it; returns the writer's checkpoint entry number."""
    w = RegisterWriter(url=env["PRODGATE_REGISTER_DB"], signing_key=env["PRODGATE_REGISTER_SIGNING_KEY"],
                       anchor=env["PRODGATE_REGISTER_ANCHOR"])
    w.preflight({"kind": "run_open", "run": run_id, "ts": "2026-11-29T08:00:00Z", "change": {"change_id": "CHG-" + run_id}})
    for i in range(n):
        w.append([{"kind": "outcome", "run": run_id, "host": f"app{i}", "task": "Deploy", "status": "ok", "changed": True}])
    seq = None
    if close:
        w.append([{"kind": "run_close", "run": run_id, "stats": {}, "failed_hosts": []}])
    if checkpoint:
        seq = w.checkpoint()
        assert w.broken is None, w.broken
    w.close()
    return seq


@pytest.fixture
def env(tmp_path, reg_env):
    reg_env = dict(reg_env)
    reg_env["PRODGATE_REGISTER_DB"] = str(tmp_path / "register.db")
    return reg_env


def _files(env):
    with open_store(env["PRODGATE_REGISTER_DB"]) as store:
        rid = store.register_id()
    folder = os.path.dirname(env["PRODGATE_REGISTER_ANCHOR"])
    return os.path.join(folder, f"anchor-{rid}.json"), os.path.join(folder, f"witness-{rid}.jsonl")


def _truncate_after(env, seq):
    """The attacker: drop the append-only guard and delete every entry after ``seq``."""
    conn = sqlite3.connect(env["PRODGATE_REGISTER_DB"])
    conn.execute("DROP TRIGGER register_entries_no_delete")
    conn.execute("DELETE FROM register_entries WHERE seq > ?", (seq,))
    conn.commit()
    conn.close()


def _verify(env, *extra):
    proc = prodgate(env, "register", "verify", "--json", *extra)
    return proc.returncode, json.loads(proc.stdout)


def _preflight(env, run_id):
    w = RegisterWriter(url=env["PRODGATE_REGISTER_DB"], signing_key=env["PRODGATE_REGISTER_SIGNING_KEY"],
                       anchor=env["PRODGATE_REGISTER_ANCHOR"])
    try:
        w.preflight({"kind": "run_open", "run": run_id, "ts": "2026-11-29T09:00:00Z"})
    finally:
        w.close()


def test_truncated_register_with_the_anchor_deleted_does_not_verify(env):
    first = _run(env, "run-1")
    _run(env, "run-2")
    anchor, witness = _files(env)
    assert _verify(env)[0] == 0
    _truncate_after(env, first)  # run 2 and its checkpoint are gone
    os.remove(anchor)
    code, report = _verify(env)
    assert code == 1, report
    assert report["first_problem"]["kind"] == "truncated" and "witness" in report["first_problem"]["message"]
    assert report["checked"]["witness"] is True and report["checked"]["anchor"] is False
    # and the next run does not sign the truncated chain
    with pytest.raises(RegisterError, match="tail truncated: the witness"):
        _preflight(env, "run-3")


def test_anchor_rolled_back_to_an_older_checkpoint_does_not_verify(env):
    _run(env, "run-1")
    anchor, _witness = _files(env)
    old = open(anchor, encoding="utf-8").read()
    second = _run(env, "run-2")
    _truncate_after(env, second - 6)  # back to the state of run 1's checkpoint
    with open(anchor, "w", encoding="utf-8") as fh:
        fh.write(old)  # the older anchor needs no key
    code, report = _verify(env)
    assert code == 1 and report["first_problem"]["kind"] == "truncated", report
    with pytest.raises(RegisterError, match="truncated"):
        _preflight(env, "run-3")


def test_nothing_outside_the_register_left_exits_3_and_says_so(env):
    first = _run(env, "run-1")
    _run(env, "run-2")
    anchor, witness = _files(env)
    _truncate_after(env, first)
    os.remove(anchor)
    os.remove(witness)
    code, report = _verify(env)
    assert code == 3, report
    assert report["ok"] is False and report["checked"]["anchor"] is False and report["checked"]["witness"] is False
    assert "no anchor and no witness" in report["unanchored"][0]
    text = prodgate(env, "register", "verify")
    assert text.returncode == 3 and "UNANCHORED" in text.stdout
    # an auditor who knows can still read the chain verdict
    code, report = _verify(env, "--allow-unanchored")
    assert code == 0 and report["unanchored"] and report["allow_unanchored"]
    with pytest.raises(RegisterError, match="no anchor"):
        _preflight(env, "run-3")


def test_no_trusted_key_exits_3(env):
    _run(env, "run-1")
    os.remove(env["PRODGATE_REGISTER_SIGNING_KEY"] + ".pub")
    shutil.move(env["PRODGATE_REGISTER_SIGNING_KEY"], env["PRODGATE_REGISTER_SIGNING_KEY"] + ".away")
    code, report = _verify(env)
    assert code == 3 and report["checked"]["signer_pinned"] is False, report
    assert "no trusted public key" in report["unanchored"][0]


def test_intact_register_verifies_and_json_says_what_was_checked(env):
    _run(env, "run-1")
    cp = _run(env, "run-2")
    anchor, witness = _files(env)
    code, report = _verify(env)
    assert code == 0 and report["ok"], report
    assert report["checked"] == {"chain": True, "checkpoint_signatures": 2, "signer_pinned": True, "anchor": True,
                                 "witness": True, "witnessed_up_to": cp}
    assert report["witnesses"][0]["where"] == witness and report["witnesses"][0]["checkpoints"] == 2


def test_entry_forged_after_the_last_checkpoint_is_refused_by_the_next_preflight(env):
    _run(env, "run-1")
    with open_store(env["PRODGATE_REGISTER_DB"]) as store:
        # correctly chained, but no run is open to have written it
        store.append([canonical_json({"kind": "outcome", "run": "run-1", "host": "app1", "task": "Deploy",
                                      "status": "ok", "changed": True, "note": "forged"})])
    with pytest.raises(RegisterError, match="belongs to run run-1, which was neither open"):
        _preflight(env, "run-2")


def test_entry_of_no_run_forged_after_the_last_checkpoint_is_refused(env):
    _run(env, "run-1")
    with open_store(env["PRODGATE_REGISTER_DB"]) as store:
        store.append([canonical_json({"kind": "outcome", "host": "app1", "task": "Deploy", "status": "ok"})])
    with pytest.raises(RegisterError, match="forged"):
        _preflight(env, "run-2")


def test_concurrent_and_killed_runs_leave_an_unsigned_tail_that_is_accepted(env):
    """Runs open at the last checkpoint (a concurrent run) and runs opened after it may go on."""
    slow = RegisterWriter(url=env["PRODGATE_REGISTER_DB"], signing_key=env["PRODGATE_REGISTER_SIGNING_KEY"],
                          anchor=env["PRODGATE_REGISTER_ANCHOR"])
    slow.preflight({"kind": "run_open", "run": "slow", "ts": "2026-11-29T08:00:00Z"})
    _run(env, "quick-1")  # opens, closes and checkpoints while "slow" runs
    _run(env, "quick-2")
    slow.append([{"kind": "outcome", "run": "slow", "host": "db1", "task": "Migrate", "status": "ok"}])
    _run(env, "killed", close=False, checkpoint=False)  # a controller killed mid-run
    _preflight(env, "next")  # accepted: both tails belong to runs that may still write
    slow.close()


def _clear_append_only(path):
    """What only root can do (chattr -a): the test cleans up after itself."""
    import fcntl  # pylint: disable=import-outside-toplevel
    import struct  # pylint: disable=import-outside-toplevel
    fd = os.open(path, os.O_RDONLY)
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, 0x80086601, struct.pack("l", 0)))[0]
        fcntl.ioctl(fd, 0x40086602, struct.pack("l", flags & ~0x20))
    finally:
        os.close(fd)


def test_a_configured_witness_is_append_only_where_the_file_system_allows(env, tmp_path):
    witness = str(tmp_path / "other-volume" / "witness.jsonl")
    env["PRODGATE_REGISTER_WITNESS"] = witness
    os.environ["PRODGATE_REGISTER_WITNESS"] = witness  # the writer runs in this process
    try:
        _run(env, "run-1")
    finally:
        del os.environ["PRODGATE_REGISTER_WITNESS"]
    code, report = _verify(env)
    assert code == 0 and report["witnesses"][0]["where"] == witness and report["checked"]["witness"]
    status = report["witnesses"][0]["append_only"]
    if status:  # root on ext4/xfs/tmpfs: the writer itself cannot truncate it any more
        with pytest.raises(PermissionError):
            open(witness, "w", encoding="utf-8").close()
        _clear_append_only(witness)
    assert status is not None or os.geteuid() != 0


def test_a_gate_decision_of_the_running_change_is_accepted_a_forged_one_is_not(env):
    """The approval gate appends its decision and the completion without a run id (the single-use
    ledger does); the command line's ledger import is outside any run."""
    slow = RegisterWriter(url=env["PRODGATE_REGISTER_DB"], signing_key=env["PRODGATE_REGISTER_SIGNING_KEY"],
                          anchor=env["PRODGATE_REGISTER_ANCHOR"])
    slow.preflight({"kind": "run_open", "run": "slow", "ts": "2026-11-29T08:00:00Z", "change": {"id": "CHG-SLOW"}})
    _run(env, "quick")
    slow.append([{"kind": "gate_decision", "change_id": "CHG-SLOW", "approvals": []},
                 {"kind": "change_completed", "change_id": "CHG-SLOW"}])
    with open_store(env["PRODGATE_REGISTER_DB"]) as store:  # `prodgate ledger import` from the command line
        store.append([canonical_json({"kind": "ledger_import", "source": "old.sqlite", "nonces": 3, "completed": 1})])
    _preflight(env, "next")  # the decision of a change whose run is still open
    slow.close()
    _run(env, "after")
    with open_store(env["PRODGATE_REGISTER_DB"]) as store:
        store.append([canonical_json({"kind": "gate_decision", "change_id": "CHG-FORGED", "approvals": []})])
    with pytest.raises(RegisterError, match="forged"):
        _preflight(env, "later")
