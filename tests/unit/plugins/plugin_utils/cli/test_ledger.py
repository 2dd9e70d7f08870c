"""`prodgate ledger import` (cli/ledger.py): an old-schema ledger file is copied into the change
register, so that none of its consumed approvals can pass the gate again."""
import json
import sqlite3

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli import main
from .cli_run import run
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger


def old_ledger(path):
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE consumed_nonce (nonce TEXT PRIMARY KEY, change_id TEXT, consumed_at TEXT)")
        raw.execute("CREATE TABLE completed_change (change_id TEXT PRIMARY KEY, completed_at TEXT)")
        raw.execute("INSERT INTO consumed_nonce VALUES ('nonce-oldoldoldoldold1', 'CHG-0900', '2025-01-01T00:00:00+00:00')")
        raw.execute("INSERT INTO consumed_nonce VALUES ('nonce-oldoldoldoldold2', 'CHG-0901', '2025-01-03T00:00:00+00:00')")
        raw.execute("INSERT INTO completed_change VALUES ('CHG-0900', '2025-01-02T00:00:00+00:00')")
    raw.close()
    return path


@pytest.fixture(name="clean_env")
def fixture_clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PRODGATE_REGISTER_DB", raising=False)
    monkeypatch.setenv("PRODGATE_CONTROLLER_CONFIG", str(tmp_path / "no-controller.yml"))
    monkeypatch.setenv("HOME", str(tmp_path))


def test_import_copies_the_consumed_approvals_so_they_cannot_pass_again(tmp_path, capsys, clean_env):
    old = old_ledger(str(tmp_path / "ledger.sqlite"))
    db = tmp_path / "register.db"
    code, out, err = run(capsys, "ledger", "import", old, "--db", db)
    assert code == 0 and err == ""
    assert out.strip() == (f"imported 2 consumed approval(s) and 1 completed change(s) from {old} into the change "
                           f"register {db} (0 already there)")
    with Ledger.open(str(db)) as ledger:
        with pytest.raises(ApprovalError, match=r"nonce-oldoldoldoldold2 \(used by CHG-0901"):
            ledger.consume(["nonce-oldoldoldoldold2"], "CHG-1001")
        assert ledger.is_completed("CHG-0900")
    code, out, _err = run(capsys, "ledger", "import", old, "--db", db, "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and (data["nonces"], data["completed"], data["already_there"]) == (0, 0, 3)


def test_the_register_comes_from_the_environment_when_db_is_not_given(tmp_path, capsys, clean_env, monkeypatch):
    old = old_ledger(str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("PRODGATE_REGISTER_DB", str(tmp_path / "env.db"))
    code, out, _err = run(capsys, "ledger", "import", old, "--json")
    assert code == 0 and json.loads(out)["register"].endswith("env.db")
    assert (tmp_path / "env.db").exists()


def test_without_any_register_the_error_names_the_controller_settings(tmp_path, capsys, clean_env):
    old = old_ledger(str(tmp_path / "ledger.sqlite"))
    code, out, err = run(capsys, "ledger", "import", old)
    assert code == 1 and out == ""
    # (as root: "this controller has no trust settings: ... does not exist"; otherwise the variable is refused)
    assert err.startswith("prodgate: error:") and "trust settings" in err and "Traceback" not in err


def test_a_file_that_is_not_an_old_ledger_is_refused_and_nothing_imported(tmp_path, capsys, clean_env):
    notes = tmp_path / "notes.sqlite"
    with sqlite3.connect(notes) as raw:
        raw.execute("CREATE TABLE notes (text TEXT)")
    raw.close()
    db = tmp_path / "register.db"
    code, _out, err = run(capsys, "ledger", "import", notes, "--db", db)
    assert code == 1 and "cannot be read as a ledger of the old schema" in err and "give the ledger.sqlite" in err
    code, _out, err = run(capsys, "ledger", "import", tmp_path / "missing.sqlite", "--db", db, "--json")
    assert code == 1 and "is not a file: give the ledger.sqlite of the old schema" in err
    with Ledger.open(str(db)) as ledger:
        assert not any('"ledger_import"' in body for _seq, body in ledger.store.bodies())


def test_the_old_ledger_argument_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ledger", "import"])
    assert exc.value.code == 2 and "prodgate: error: the following arguments are required: OLD_LEDGER" in capsys.readouterr().err
