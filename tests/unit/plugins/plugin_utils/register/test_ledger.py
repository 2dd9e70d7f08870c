"""register/ledger.py: the single-use ledger in the change register. An approval is consumed once;
its consumption and the gate's decision are one transaction on the register's hash chain; a policy
older than one the register already accepted is refused (anti-rollback)."""
import math
import sqlite3

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError, PolicyError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import verify_entries
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger, import_legacy_ledger

DECISION = {"change_id": "CHG-1001", "system": "ta-core", "environment": "production", "consumed": True,
            "approvals": [{"stage": "go_live", "person": "rita"}]}
ROOT = "a" * 64


@pytest.fixture(name="db")
def fixture_db(tmp_path):
    return str(tmp_path / "register.db")


@pytest.fixture(name="ledger")
def fixture_ledger(db):
    with Ledger.open(db) as ledger:
        yield ledger


def entries(ledger):
    store = ledger.store
    return verify_entries(store.iter_rows(), store.register_id(), lookup=store.lookup)


def bodies(ledger, kind):
    return [body for _seq, body in ledger.store.bodies() if f'"kind":"{kind}"' in body]


# ---- single use ---------------------------------------------------------------------------------

def test_nonces_are_consumed_once_with_their_decision_on_the_chain(ledger):
    ledger.consume(["nonce-aaaaaaaaaaaaaaaa", "nonce-bbbbbbbbbbbbbbbb"], "CHG-1001", job_id="42", decision=DECISION)
    used = ledger.consumed(["nonce-aaaaaaaaaaaaaaaa", "nonce-bbbbbbbbbbbbbbbb", "nonce-cccccccccccccccc"])
    assert set(used) == {"nonce-aaaaaaaaaaaaaaaa", "nonce-bbbbbbbbbbbbbbbb"}
    assert {change for change, _at in used.values()} == {"CHG-1001"}
    assert ledger.is_consumed("nonce-aaaaaaaaaaaaaaaa") and not ledger.is_consumed("nonce-cccccccccccccccc")
    assert sorted(ledger.nonces_of("CHG-1001")) == ["nonce-aaaaaaaaaaaaaaaa", "nonce-bbbbbbbbbbbbbbbb"]
    report = entries(ledger)
    assert report["ok"], report["problems"]
    [decision] = bodies(ledger, "gate_decision")
    assert '"change_id":"CHG-1001"' in decision and '"job_id":"42"' in decision and '"person":"rita"' in decision


def test_a_second_consume_is_refused_as_a_replay_naming_the_first_use(ledger):
    ledger.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001", decision=DECISION)
    before = entries(ledger)["entries"]
    with pytest.raises(ApprovalError) as exc:
        ledger.consume(["nonce-cccccccccccccccc", "nonce-aaaaaaaaaaaaaaaa"], "CHG-1002", decision=dict(DECISION, change_id="CHG-1002"))
    message = str(exc.value)
    assert message.startswith("replay refused: approval nonce(s) already consumed: nonce-aaaaaaaaaaaaaaaa (used by CHG-1001 at ")
    assert message.endswith("every approval is single-use, sign new approvals with `prodgate approve`")
    # all or none: the fresh nonce of the refused run is not consumed, and no decision was appended
    assert not ledger.is_consumed("nonce-cccccccccccccccc")
    assert entries(ledger)["entries"] == before
    assert len(bodies(ledger, "gate_decision")) == 1


def test_consumption_survives_reopening_the_register(db):
    with Ledger.open(db) as first:
        first.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001", decision=DECISION)
    with Ledger.open(db) as second:
        assert second.consumed(["nonce-aaaaaaaaaaaaaaaa"])["nonce-aaaaaaaaaaaaaaaa"][0] == "CHG-1001"
        with pytest.raises(ApprovalError, match="replay refused"):
            second.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001")


def test_two_ledgers_on_one_register_cannot_both_consume(db):
    """Two gates racing with the same evidence: the second one is refused."""
    with Ledger.open(db) as one, Ledger.open(db) as two:
        one.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001", decision=DECISION)
        with pytest.raises(ApprovalError, match="replay refused"):
            two.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001", decision=DECISION)
        assert len(bodies(two, "gate_decision")) == 1


def test_a_decision_that_cannot_be_recorded_consumes_nothing(ledger, db):
    """Consumption and the decision are one transaction: if the decision cannot go on record (here the
    database refuses the chain entry, as a full disk would), the approvals stay unused, and the
    refusal says why."""
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TRIGGER test_disk_full BEFORE INSERT ON register_entries BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    raw.close()
    with pytest.raises(ApprovalError) as exc:
        ledger.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001", decision=DECISION)
    assert str(exc.value) == f"the change register {db} could not record the approvals: IntegrityError: disk full"
    assert not ledger.is_consumed("nonce-aaaaaaaaaaaaaaaa")
    with sqlite3.connect(db) as raw:
        raw.execute("DROP TRIGGER test_disk_full")
    raw.close()
    ledger.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001", decision=DECISION)
    assert ledger.is_consumed("nonce-aaaaaaaaaaaaaaaa") and len(bodies(ledger, "gate_decision")) == 1


def test_floats_in_a_decision_are_recorded_as_text_not_refused(ledger):
    """The chain holds no floats (their text is not canonical across languages): NaN and 0.1 go on
    record as strings, and the approvals are consumed."""
    ledger.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001", decision=dict(DECISION, decision_ms=0.1, score=math.nan))
    [body] = bodies(ledger, "gate_decision")
    assert '"decision_ms":"0.1"' in body and '"score":"nan"' in body


def test_an_edited_decision_is_found_by_verification(ledger, db):
    ledger.consume(["nonce-aaaaaaaaaaaaaaaa"], "CHG-1001", decision=DECISION)
    ledger.record_decision(dict(DECISION, consumed=False, rehearsal=True))
    assert entries(ledger)["ok"]
    edit = "UPDATE register_entries SET body = replace(body, 'rita', 'mallory') WHERE body LIKE '%gate_decision%'"
    with sqlite3.connect(db) as raw:
        with pytest.raises(sqlite3.IntegrityError, match="the change register is append-only"):
            raw.execute(edit)
        # someone with the file drops the guard and edits anyway: verification finds it
        raw.execute("DROP TRIGGER register_entries_no_update")
        raw.execute(edit)
    raw.close()
    report = entries(ledger)
    assert not report["ok"] and report["first_problem"]["kind"] == "altered"


def test_record_decision_consumes_nothing(ledger):
    ledger.record_decision(dict(DECISION, consumed=False), job_id="7")
    assert ledger.nonces_of("CHG-1001") == []
    assert len(bodies(ledger, "gate_decision")) == 1 and entries(ledger)["ok"]


# ---- completed changes ------------------------------------------------------------------------------

def test_a_change_is_completed_once(ledger):
    assert ledger.completion("CHG-1001") is None and not ledger.is_completed("CHG-1001")
    assert ledger.mark_completed("CHG-1001", job_id="9") is True
    assert ledger.is_completed("CHG-1001")
    completed_at = ledger.completion("CHG-1001")[0]
    assert ledger.mark_completed("CHG-1001") is False
    assert ledger.completion("CHG-1001")[0] == completed_at
    assert len(bodies(ledger, "change_completed")) == 1 and entries(ledger)["ok"]


def test_a_completed_change_id_is_not_a_consumed_nonce(ledger):
    ledger.mark_completed("CHG-1001")
    assert not ledger.is_consumed("CHG-1001")


# ---- policy anti-rollback -----------------------------------------------------------------------------

def test_policy_versions_only_go_forward_under_a_root(ledger):
    assert ledger.highest_policy_version(ROOT) is None
    assert ledger.accept_policy_version(ROOT, 3, "/etc/prodgate/policy.yml") is None
    assert ledger.accept_policy_version(ROOT, 3, "/etc/prodgate/policy.yml") == 3     # the same one again
    assert ledger.accept_policy_version(ROOT, 5, "/etc/prodgate/policy.yml") == 3
    assert ledger.highest_policy_version(ROOT) == 5
    with pytest.raises(PolicyError) as exc:
        ledger.accept_policy_version(ROOT, 4, "/srv/old/policy.yml")
    assert str(exc.value) == ("policy /srv/old/policy.yml is version 4, older than version 5 already accepted under this "
                              "governance root (rollback refused: a superseded policy can bring back revoked keys); use the "
                              "current policy, version 5 or later")
    assert ledger.highest_policy_version(ROOT) == 5


def test_each_governance_root_has_its_own_versions(ledger):
    ledger.accept_policy_version(ROOT, 9, "p.yml")
    assert ledger.accept_policy_version("b" * 64, 1, "q.yml") is None
    assert ledger.highest_policy_version("b" * 64) == 1


def test_the_highest_version_is_kept_across_reopening(db):
    with Ledger.open(db) as first:
        first.accept_policy_version(ROOT, 2, "p.yml")
    with Ledger.open(db) as second:
        with pytest.raises(PolicyError, match="is version 1, older than version 2"):
            second.accept_policy_version(ROOT, 1, "p.yml")


# ---- opening the register --------------------------------------------------------------------------

@pytest.mark.parametrize("url, message", [
    ("", r"the controller has no change register \(register\.db in the controller trust settings\)"),
    (None, "the controller has no change register"),
    ("/tmp/reg\0istry.db", "contains a NUL byte"),
])
def test_no_usable_register_is_refused(url, message):
    with pytest.raises(ApprovalError, match=message):
        Ledger.open(url)


def test_a_local_register_under_awx_is_refused(db):
    with pytest.raises(ApprovalError, match="this is an AWX job and the change register .* is a local SQLite file"):
        Ledger.open(db, awx=True)


def old_ledger(path):
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE consumed_nonce (nonce TEXT PRIMARY KEY, change_id TEXT, consumed_at TEXT)")
        raw.execute("CREATE TABLE completed_change (change_id TEXT PRIMARY KEY, completed_at TEXT)")
        raw.execute("INSERT INTO consumed_nonce VALUES ('nonce-oldoldoldoldold1', 'CHG-0900', '2025-01-01T00:00:00+00:00')")
        raw.execute("INSERT INTO completed_change VALUES ('CHG-0900', '2025-01-02T00:00:00+00:00')")
    raw.close()
    return path


def test_an_old_schema_ledger_is_not_silently_used_as_a_register(tmp_path):
    path = old_ledger(str(tmp_path / "ledger.sqlite"))
    with pytest.raises(ApprovalError) as exc:
        Ledger.open(path)
    assert "is a single-use ledger of the old schema" in str(exc.value)
    assert "1 consumed approval(s), 1 completed change(s)" in str(exc.value)
    assert f"prodgate ledger import {path} --db <change register>" in str(exc.value)


def test_importing_an_old_ledger_keeps_its_approvals_consumed(tmp_path, ledger):
    path = old_ledger(str(tmp_path / "ledger.sqlite"))
    counts = import_legacy_ledger(ledger, path)
    assert counts["nonces"] == 1 and counts["completed"] == 1 and counts["already_there"] == 0
    with pytest.raises(ApprovalError, match=r"nonce-oldoldoldoldold1 \(used by CHG-0900"):
        ledger.consume(["nonce-oldoldoldoldold1"], "CHG-1001")
    assert ledger.is_completed("CHG-0900")
    assert import_legacy_ledger(ledger, path)["already_there"] == 2
    assert len(bodies(ledger, "ledger_import")) == 2 and entries(ledger)["ok"]
