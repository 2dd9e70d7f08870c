"""prodgate.deploy.dml_apply against a real PostgreSQL 15 on loopback (Art. 10(3)).

A throwaway cluster is created with initdb in a temporary directory as the postgres user and started
on a free loopback port; the module runs for real through ansible-playbook (connection local, with
this Python, whose psycopg 3 stands in for the hosts' psycopg2). PostgreSQL missing is a failure.
Pattern: check mode -> assert would_apply and nothing written -> real run -> verify tables and ledger ->
rerun -> assert unchanged; then the refusals.
"""
import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "sampleapp"


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run `make setup` (Debian package postgresql)")
    return os.path.dirname(found[-1])


@pytest.fixture(scope="module", name="pg")
def fixture_pg():
    bindir = _pg_bin()
    base = tempfile.mkdtemp(prefix="prodgate-dml-")
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    shutil.chown(base, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_pg + [f"{bindir}/initdb", "-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(base, "log"), "-w", "-o",
                            f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE sampleapp")
        yield {"db_host": "127.0.0.1", "db_port": port, "db_user": "postgres", "db_name": "sampleapp"}
    finally:
        subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def query(pg, sql):
    with psycopg.connect(host=pg["db_host"], port=pg["db_port"], user=pg["db_user"], dbname=pg["db_name"]) as conn:
        return conn.execute(sql).fetchall()


def run_module(tmp_path, args, check=False):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "dml_apply", "prodgate.deploy.dml_apply": args, "register": "out", "ignore_errors": True}]}]))
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_CONFIG"}  # no ansible.cfg in tmp_path: plain defaults
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook), "-i", "localhost,",
           "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"] + (["--check"] if check else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, check=False)
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"ansible-playbook gave no result: {proc.stdout}\n{proc.stderr}")


def unpack(tmp_path, version):
    out = subprocess.run([sys.executable, str(SAMPLE / "build_bundles.py"), str(tmp_path / "bundles"), "--versions", version],
                         capture_output=True, text=True, check=True).stdout
    rel = tmp_path / version
    rel.mkdir()
    subprocess.run(["tar", "-xzf", json.loads(out)["path"], "-C", str(rel)], check=True)
    return rel, yaml.safe_load((rel / "manifest.yml").read_text())


def args_for(pg, rel, manifest, **extra):
    return dict(dict(pg, manifest=manifest, release_dir=str(rel), change_id="CHG-1", applied_by="alice"), **extra)


def test_check_apply_rerun_then_upgrade_applies_only_the_new_script(pg, tmp_path):
    rel, manifest = unpack(tmp_path, "1.0.0")
    checked = run_module(tmp_path, args_for(pg, rel, manifest), check=True)
    assert checked.get("failed") is not True, checked
    assert checked["changed"] is True and checked["applied"] == []
    assert [i["path"] for i in checked["would_apply"]] == ["migrations/001_settings_table.sql", "data/001_greeting.sql"]
    assert query(pg, "SELECT to_regclass('sampleapp_settings'), to_regclass('prodgate_dml_ledger')") == [(None, None)]

    first = run_module(tmp_path, args_for(pg, rel, manifest))
    assert first["changed"] is True and first["applied"] == ["migrations/001_settings_table.sql", "data/001_greeting.sql"]
    assert query(pg, "SELECT value FROM sampleapp_settings WHERE key = 'greeting'") == [("hello from 1.0.0",)]
    ledger = query(pg, "SELECT script, category, digest, system, version, change_id, applied_by, applied_at IS NOT NULL "
                       "FROM prodgate_dml_ledger ORDER BY script")
    assert [(r[0], r[1], r[3], r[4], r[5], r[6], r[7]) for r in ledger] == [
        ("data/001_greeting.sql", "data_scripts", "sampleapp", "1.0.0", "CHG-1", "alice", True),
        ("migrations/001_settings_table.sql", "migrations", "sampleapp", "1.0.0", "CHG-1", "alice", True)]
    assert {r[0]: r[2] for r in ledger}["data/001_greeting.sql"] == manifest["data_scripts"][0]["sha256"]

    again = run_module(tmp_path, args_for(pg, rel, manifest))
    assert again["changed"] is False and again["applied"] == [] and len(again["already_applied"]) == 2

    rel11, manifest11 = unpack(tmp_path, "1.1.0")
    upgrade_check = run_module(tmp_path, args_for(pg, rel11, manifest11, change_id="CHG-2"), check=True)
    assert [i["path"] for i in upgrade_check["would_apply"]] == ["data/002_greeting_1_1.sql"]
    upgrade = run_module(tmp_path, args_for(pg, rel11, manifest11, change_id="CHG-2"))
    assert upgrade["applied"] == ["data/002_greeting_1_1.sql"]
    assert query(pg, "SELECT key, value FROM sampleapp_settings ORDER BY key") == [
        ("greeting", "hello from 1.1.0"), ("motd", "rolling upgrades without an outage")]
    assert query(pg, "SELECT change_id FROM prodgate_dml_ledger WHERE script = 'data/002_greeting_1_1.sql'") == [("CHG-2",)]
    assert run_module(tmp_path, args_for(pg, rel11, manifest11, change_id="CHG-2"))["changed"] is False


def test_refusals_leave_the_database_untouched(pg, tmp_path):
    rel, manifest = unpack(tmp_path, "1.1.0")
    before = query(pg, "SELECT count(*) FROM prodgate_dml_ledger")  # the first test ran already (module scope)

    # a script altered after approval
    (rel / "data" / "002_greeting_1_1.sql").write_text("DELETE FROM sampleapp_settings;\n")
    altered = run_module(tmp_path, args_for(pg, rel, manifest))
    assert altered["failed"] is True and "data/002_greeting_1_1.sql: digest" in altered["msg"]
    assert "does not match the approved manifest" in altered["msg"]

    # an applied script changed and re-approved: still refused by the ledger
    manifest_changed = json.loads(json.dumps(manifest))
    manifest_changed["data_scripts"][1]["sha256"] = hashlib.sha256(b"DELETE FROM sampleapp_settings;\n").hexdigest()
    changed = run_module(tmp_path, args_for(pg, rel, manifest_changed))
    assert changed["failed"] is True and "data/002_greeting_1_1.sql: already applied with digest" in changed["msg"]

    # DDL and COPY in new data scripts are refused before anything runs, also in check mode
    for name, sql, reason in [("003_ddl.sql", "INSERT INTO sampleapp_settings VALUES ('x', 'y');\nDROP TABLE sampleapp_settings;\n",
                               "data/003_ddl.sql line 2: DROP TABLE sampleapp_settings: refused: DROP is not DML"),
                              ("003_copy.sql", "COPY sampleapp_settings FROM '/etc/passwd';\n", "refused: COPY loads or exports files"),
                              ("003_lo.sql", "INSERT INTO sampleapp_settings SELECT 'k', lo_import('/etc/hosts')::text;\n",
                               "lo_import reads files or large objects")]:
        (rel / "data" / name).write_text(sql)
        bad = dict(manifest, data_scripts=[{"path": f"data/{name}", "sha256": hashlib.sha256(sql.encode()).hexdigest()}])
        for check in (True, False):
            answer = run_module(tmp_path, args_for(pg, rel, bad), check=check)
            assert answer["failed"] is True and reason in answer["msg"], answer
    assert query(pg, "SELECT to_regclass('sampleapp_settings') IS NOT NULL") == [(True,)]
    assert query(pg, "SELECT count(*) FROM prodgate_dml_ledger") == before


def test_a_failing_statement_rolls_back_its_script_and_stops(pg, tmp_path):
    rel, manifest = unpack(tmp_path, "1.0.0")
    sql_ok = "INSERT INTO sampleapp_settings VALUES ('ok', '1');\n"
    sql_bad = "INSERT INTO sampleapp_settings VALUES ('half', '1');\nINSERT INTO no_such_table VALUES (1);\n"
    (rel / "data" / "010_ok.sql").write_text(sql_ok)
    (rel / "data" / "011_bad.sql").write_text(sql_bad)
    digest = hashlib.sha256
    manifest = dict(manifest, migrations=[], data_scripts=[{"path": "data/010_ok.sql", "sha256": digest(sql_ok.encode()).hexdigest()},
                                                           {"path": "data/011_bad.sql", "sha256": digest(sql_bad.encode()).hexdigest()}])
    answer = run_module(tmp_path, args_for(pg, rel, manifest, change_id="CHG-3"))
    assert answer["failed"] is True and answer["applied"] == ["data/010_ok.sql"]
    assert "data/011_bad.sql line 2: INSERT INTO no_such_table VALUES (1): failed:" in answer["msg"]
    assert "no_such_table" in answer["msg"] and "rolled back" in answer["msg"]
    assert query(pg, "SELECT key FROM sampleapp_settings WHERE key IN ('ok', 'half') ORDER BY key") == [("ok",)]
    assert query(pg, "SELECT script FROM prodgate_dml_ledger WHERE change_id = 'CHG-3'") == [("data/010_ok.sql",)]


def test_missing_driver_or_server_gives_a_clear_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rel, manifest = unpack(tmp_path, "1.0.0")
    answer = run_module(tmp_path, args_for({"db_host": "127.0.0.1", "db_port": port, "db_name": "x", "db_user": "x"}, rel, manifest,
                                           connect_timeout=2))
    assert answer["failed"] is True and answer["msg"].startswith("PostgreSQL: ") and str(port) in answer["msg"]
