"""`prodgate register ...` (cli/register.py, and audit/retrospective of cli/_register_audit.py) over a
real register written by the register's writer: init and keygen, runs and changes with filters,
show, verify (0 verified, 1 tampered, 3 unanchored), export, the Art. 27 form, the Art. 22(5)
archive, journals and the audit of ungated production runs."""
import csv
import io
import json
import sqlite3

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli import main
from .cli_run import run

from ..register.register_world import Register, World, change, gate, health_check_fails, install, window


@pytest.fixture(name="reg")
def fixture_reg(tmp_path, monkeypatch):
    """CHG-1001 completed through the gate; CHG-1002 whose health check failed and that was rolled back;
    CHG-1003 a production change without any gate (ungated)."""
    world = World(tmp_path / "world")
    reg = Register(tmp_path / "reg")
    ev1 = world.evidence()
    reg.run(change("CHG-1001", version="1.1.0"), "2026-03-02", [
        gate("CHG-1001", ev1), window("2026-03-02"), install("app1", "1.1.0", "1.0.0\n"),
        install("app2", "1.1.0", "1.0.0\n")])
    ev2 = world.evidence(binding=world.binding(change_id="CHG-1002", version="1.2.0"))
    reg.run(change("CHG-1002", version="1.2.0"), "2026-03-03", [
        gate("CHG-1002", ev2), install("app1", "1.2.0", "1.1.0\n"), health_check_fails("app1"),
        install("app1", "1.1.0", "1.2.0\n", tags=["prodgate_rollback"])])
    reg.run(change("CHG-1003", system="wiki", change_type="routine", version=None), "2026-03-04", [
        ("wiki1", {"name": "Restart wiki", "module": "ansible.builtin.service"}, "ok", {"changed": True})])
    reg.environ(monkeypatch, tmp_path)
    reg.world = world
    return reg


def test_init_creates_the_register_and_its_key_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PRODGATE_REGISTER_SIGNING_KEY", raising=False)
    db, key = tmp_path / "new.db", tmp_path / "keys" / "signing.key"
    code, out, _err = run(capsys, "register", "init", "--db", db, "--key", key, "--json")
    first = json.loads(out)
    assert code == 0 and first["ok"] and first["key_created"] and first["schema_version"] >= 1 and key.exists()
    code, out, _err = run(capsys, "register", "init", "--db", db, "--key", key, "--json")
    again = json.loads(out)
    assert code == 0 and not again["key_created"] and again["register_id"] == first["register_id"]
    assert again["key_id"] == first["key_id"]


def test_keygen_never_replaces_a_signing_key(tmp_path, capsys):
    key = tmp_path / "cp.key"
    code, out, _err = run(capsys, "register", "keygen", "--key", key)
    assert code == 0 and out.startswith(f"created {key} (key id ") and (tmp_path / "cp.key.pub").exists()
    before = key.read_bytes()
    code, _out, err = run(capsys, "register", "keygen", "--key", key)
    assert code == 1 and f"{key} already exists: refusing to replace a signing key" in err and "choose another path" in err
    assert key.read_bytes() == before


def test_a_missing_register_is_refused_naming_init(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PRODGATE_REGISTER_DB", raising=False)
    code, out, err = run(capsys, "register", "runs", "--db", tmp_path / "empty.db")
    assert code == 1 and out == ""
    assert f"no register at {tmp_path / 'empty.db'}: run a playbook with the callback enabled, or `prodgate register " \
           f"init --db {tmp_path / 'empty.db'}`" in err


def test_runs_lists_each_run_with_its_change_and_state(reg, capsys):
    code, out, _err = run(capsys, "register", "runs", "-f", "json")
    runs = {r["change_id"]: r for r in json.loads(out)}
    assert code == 0 and set(runs) == {"CHG-1001", "CHG-1002", "CHG-1003"}
    assert runs["CHG-1001"]["state"] == "ok" and runs["CHG-1002"]["state"] == "failed"
    code, out, _err = run(capsys, "register", "runs", "--limit", "1", "-f", "json")
    assert code == 0 and len(json.loads(out)) == 1


def test_changes_are_filtered_by_change_status_and_host(reg, capsys):
    code, out, _err = run(capsys, "register", "changes", "--change", "CHG-1002", "--status", "failed", "-f", "json")
    rows = json.loads(out)
    assert code == 0 and [(r["host"], r["task"], r["status"]) for r in rows] == [("app1", "Health check", "failed")]
    code, out, _err = run(capsys, "register", "changes", "--host", "app2", "-f", "json")
    assert {r["change_id"] for r in json.loads(out)} == {"CHG-1001"}
    code, out, _err = run(capsys, "register", "changes", "--status", "changed", "-f", "json")
    assert code == 0 and all(r["changed"] for r in json.loads(out)) and len(json.loads(out)) == 5


def test_an_unknown_status_is_a_usage_error(reg, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["register", "changes", "--status", "exploded"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "prodgate: error: argument --status" in err and "exploded" in err


def test_show_finds_a_run_by_its_prefix(reg, capsys):
    code, out, _err = run(capsys, "register", "show", "run-002", "--json")
    data = json.loads(out)
    assert code == 0 and data["run"]["change_id"] == "CHG-1002"
    assert {t["task"] for t in data["tasks"]} >= {"Health check", "Install the release"}


def test_verify_an_intact_register_against_its_anchor_witness_and_key(reg, capsys):
    code, out, _err = run(capsys, "register", "verify")
    assert code == 0 and out.rstrip().endswith("verify: OK")
    assert "chain: OK: every entry matches its hash" in out and "signer pinned" in out and "anchor: " in out
    code, out, _err = run(capsys, "register", "verify", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["checked"]["signer_pinned"] and data["checked"]["anchor"]
    assert data["checked"]["witness"] and data["exit_code"] == 0


def test_verify_without_anything_outside_the_register_exits_3(reg, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PRODGATE_REGISTER_SIGNING_KEY", str(tmp_path / "elsewhere" / "none.key"))
    monkeypatch.setenv("PRODGATE_REGISTER_ANCHOR", str(tmp_path / "elsewhere" / "anchor-{register_id}.json"))
    code, out, _err = run(capsys, "register", "verify")
    assert code == 3 and "UNANCHORED: no anchor and no witness holds a checkpoint" in out
    assert "UNANCHORED: no trusted public key" in out and "verify: UNANCHORED (exit 3)" in out
    code, out, _err = run(capsys, "register", "verify", "--allow-unanchored")
    assert code == 0 and "warning (--allow-unanchored)" in out


def test_verify_finds_an_altered_entry_exit_1(reg, capsys):
    with sqlite3.connect(reg.db) as conn:  # someone with the database file, past its append-only triggers
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        body = conn.execute("SELECT body FROM register_entries WHERE seq = 2").fetchone()[0]
        conn.execute("UPDATE register_entries SET body = ? WHERE seq = 2", (body.replace("localhost", "otherhost"),))
    conn.close()
    code, out, _err = run(capsys, "register", "verify")
    assert code == 1 and "verify: FAILED:" in out and "verify: OK" not in out
    code, out, _err = run(capsys, "register", "verify", "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["first_problem"]["seq"] == 2


def test_export_csv_to_a_file_and_json_with_hashes_and_checkpoint(reg, capsys, tmp_path):
    target = tmp_path / "changes.csv"
    code, out, _err = run(capsys, "register", "export", "--format", "csv", "--change", "CHG-1001", "-o", target)
    assert code == 0 and out.strip() == f"wrote 2 changes to {target}"  # the two installs; unchanged results need --all
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert {r["change_id"] for r in rows} == {"CHG-1001"} and {r["host"] for r in rows} == {"app1", "app2"}
    code, out, _err = run(capsys, "register", "export", "--format", "csv", "--change", "CHG-1001", "--all", "-o", target)
    assert code == 0 and out.strip() == f"wrote 4 changes to {target}"  # and the gate and the window, which changed nothing
    code, out, _err = run(capsys, "register", "export", "--change", "CHG-1003")
    doc = json.loads(out)
    assert code == 0 and [c["task"] for c in doc["changes"]] == ["Restart wiki"]
    assert all(len(e["hash"]) == 64 and e["body"]["run"].endswith("CHG-1003") for e in doc["entries"])
    assert doc["last_checkpoint"]["body"]["kind"] == "checkpoint"
    code, out, _err = run(capsys, "register", "export", "--format", "md", "--change", "CHG-1003")
    assert code == 0 and out.startswith("# Change register export\n") and "Restart wiki" in out


def test_the_form_of_a_rolled_back_change(reg, capsys):
    code, out, _err = run(capsys, "register", "form", "CHG-1002")
    assert code == 0 and "Outcome: **Rolled back**" in out and "app1 was switched back to" in out
    code, out, _err = run(capsys, "register", "form", "CHG-1002", "--json")
    form = json.loads(out)
    assert form["change_id"] == "CHG-1002" and [r["host"] for r in form["rolled_back"]] == ["app1"]
    code, _out, err = run(capsys, "register", "form", "CHG-404")
    assert code == 1 and "no run of change" in err and "CHG-404" in err


def test_the_archive_of_a_system(reg, capsys):
    code, out, _err = run(capsys, "register", "archive", "ta-core", "--json")
    arch = json.loads(out)
    assert code == 0 and [h["change_id"] for h in arch["history"]] == ["CHG-1001", "CHG-1002"]
    assert any(f["status"] == "failed" and f.get("task") == "Health check" for f in arch["failures"])
    code, out, _err = run(capsys, "register", "archive", "ta-core")
    assert out.startswith("# Operations archive: ta-core (Art. 22(5))") and "## Failures" in out


def test_import_journal_with_nothing_waiting(reg, capsys):
    code, out, _err = run(capsys, "register", "import-journal")
    assert code == 0 and out.strip() == "no journal waits to be imported"


def test_audit_finds_the_ungated_production_run_exit_1(reg, capsys):
    code, out, _err = run(capsys, "register", "audit")
    assert code == 1 and "UNGATED" in out and "CHG-1003" in out and "CHG-1001" not in out
    assert "1 production run(s) changed hosts without a gate decision (UNGATED)" in out
    code, out, _err = run(capsys, "register", "audit", "--json")
    found = json.loads(out)
    assert [u["change_id"] for u in found["ungated"]] == ["CHG-1003"] and found["break_glass"] == []


def test_audit_of_a_register_with_gated_runs_only_passes(tmp_path, capsys, monkeypatch):
    world = World(tmp_path / "world")
    reg = Register(tmp_path / "reg")
    reg.run(change("CHG-1001"), "2026-03-02", [gate("CHG-1001", world.evidence()), install("app1", "1.1.0", "1.0.0\n")])
    reg.environ(monkeypatch, tmp_path)
    code, out, _err = run(capsys, "register", "audit")
    assert code == 0 and out.strip() == "audit: no ungated production change, no break-glass change waiting"
