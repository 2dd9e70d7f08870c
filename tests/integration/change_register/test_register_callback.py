"""The callback in real ansible-playbook runs on a SQLite register: what is recorded, secrets kept
out, fail-closed pre-flight, a failed write mid-run with its journal, a SIGKILLed controller."""
import glob
import shutil
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from register_helpers import BIN, prodgate, run_playbook, wait_for, write_inventory
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store

CANARY = "CANARY-7f3a9-never-record-me"

PLAYBOOK = """
- name: Change register recording
  hosts: all
  gather_facts: false
  vars:
    canary_secret: "{canary}"
    out: "{out}"
  tasks:
    - name: Write the application config
      ansible.builtin.copy:
        dest: "{{{{ out }}}}/app-{{{{ inventory_hostname }}}}.conf"
        content: "version=2.4.1\\nlisten=8080\\n"
        mode: "0644"
    - name: Write a secret under no_log
      ansible.builtin.copy:
        dest: "{{{{ out }}}}/secret-{{{{ inventory_hostname }}}}.txt"
        content: "{{{{ canary_secret }}}}\\n"
        mode: "0600"
      no_log: true
    - name: Write a config with a password line (no no_log)
      ansible.builtin.copy:
        dest: "{{{{ out }}}}/db-{{{{ inventory_hostname }}}}.conf"
        content: "user=app\\npassword={{{{ canary_secret }}}}\\n"
        mode: "0600"
    - name: Command with a token in its arguments
      ansible.builtin.command: "echo api_token={{{{ canary_secret }}}}"
      changed_when: false
    - name: Loop of changes
      ansible.builtin.command: "echo {{{{ item }}}}"
      loop: [one, two]
      changed_when: true
    - name: A failure that is ignored
      ansible.builtin.command: /bin/false
      ignore_errors: true
    - name: Never runs
      ansible.builtin.debug:
        msg: skipped
      when: false
"""

EXTRA = ["-e", "prodgate_change_id=CHG-2026-0042", "-e", "prodgate_change_type=version_update", "-e", "prodgate_system=ta",
         "-e", "prodgate_environment=production", "-e", "prodgate_version=2.4.1", "-e",
         '{"prodgate_implementers": ["alice", "bob"]}', "-e", "prodgate_supervisor=carol", "--diff"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, reg_env_factory):
    """One recorded run shared by the read-only tests of this module (playbook runs are the slow part)."""
    tmp_path = tmp_path_factory.mktemp("recorded")
    reg_env = reg_env_factory(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    inv = write_inventory(tmp_path / "hosts.yml", ["web1", "web2"])
    pb = tmp_path / "change.yml"
    pb.write_text(PLAYBOOK.format(canary=CANARY, out=out))
    proc = run_playbook(reg_env, inv, pb, *EXTRA)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"env": reg_env, "tmp": tmp_path, "inv": inv, "pb": pb, "proc": proc}


def _json(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_a_run_is_recorded_with_its_change_and_verifies(recorded):
    env = recorded["env"]
    runs = _json(prodgate(env, "register", "runs", "--json"))
    assert len(runs) == 1
    run = runs[0]
    assert (run["change_id"], run["change_type"], run["system"], run["version"], run["state"]) == \
        ("CHG-2026-0042", "version_update", "ta", "2.4.1", "ok")
    assert run["checkpoint"] is not None and run["user"] and run["controller"]
    shown = _json(prodgate(env, "register", "show", run["run"][:10], "--json"))
    opened = shown["open"]
    assert opened["diff_mode"] is True and opened["check_mode"] is False
    assert opened["change"]["implementers"] == ["alice", "bob"] and opened["change"]["supervisor"] == "carol"
    assert opened["playbook"] == str(recorded["pb"])
    assert set(shown["close"]["stats"]) == {"web1", "web2"}
    # one intent and one outcome for every task and host: nothing "outcome unknown"
    assert len(shown["tasks"]) == 2 * 7
    assert not [t for t in shown["tasks"] if t["status"] == "outcome unknown"]
    by = {(t["host"], t["task"]): t for t in shown["tasks"]}
    app = by[("web1", "Write the application config")]
    assert app["status"] == "ok" and app["changed"] and app["module"] == "ansible.builtin.copy"
    assert app["args"]["dest"].endswith("app-web1.conf") and app["diff"][0]["after"] == "version=2.4.1\nlisten=8080\n"
    assert isinstance(app["duration_ms"], int)
    censored = by[("web2", "Write a secret under no_log")]
    assert censored["censored"] is True and censored["changed"] is True
    assert "args" not in censored and "diff" not in censored
    assert by[("web1", "Write a config with a password line (no no_log)")]["diff"][0]["after"] == "user=app\npassword=********\n"
    assert by[("web1", "A failure that is ignored")]["status"] == "failed" and by[("web1", "A failure that is ignored")]["ignored"]
    assert [i["item"] for i in by[("web2", "Loop of changes")]["items"]] == ["one", "two"]
    assert by[("web1", "Never runs")]["status"] == "skipped"
    verify = prodgate(env, "register", "verify")
    assert verify.returncode == 0 and "verify: OK" in verify.stdout, verify.stdout + verify.stderr


def test_changes_filters_form_and_archive(recorded):
    env = recorded["env"]
    changed = _json(prodgate(env, "register", "changes", "--json", "--host", "web2"))
    assert {c["task"] for c in changed} == {"Write the application config", "Write a secret under no_log",
                                            "Write a config with a password line (no no_log)", "Loop of changes",
                                            "A failure that is ignored"}
    assert _json(prodgate(env, "register", "changes", "--json", "--system", "nope")) == []
    failed = _json(prodgate(env, "register", "changes", "--json", "--status", "failed"))
    assert {c["host"] for c in failed} == {"web1", "web2"}
    assert _json(prodgate(env, "register", "changes", "--json", "--until", "2000-01-01")) == []
    form = _json(prodgate(env, "register", "form", "CHG-2026-0042", "--json"))
    assert form["implementers"] == ["alice", "bob"] and form["supervisor"] == "carol"
    assert form["request"]["type"] == "version_update" and form["results"] and set(form["per_host"]) == {"web1", "web2"}
    md = prodgate(env, "register", "form", "CHG-2026-0042")
    assert md.returncode == 0 and "+version=2.4.1" in md.stdout and "Supervisor on site: carol" in md.stdout
    assert "--- before" not in md.stdout and "ansible-tmp" not in md.stdout  # the document form (issue 13)
    archive = _json(prodgate(env, "register", "archive", "ta", "--json"))
    assert archive["current_version"] == "2.4.1" and len(archive["history"]) == 1
    assert "Write the application config" in archive["configuration"]["web1"]
    assert {f["host"] for f in archive["failures"]} == {"web1", "web2"}
    assert prodgate(env, "register", "form", "CHG-unknown").returncode == 1


def test_no_log_canary_never_reaches_the_register_or_exports(recorded):
    env, tmp = recorded["env"], recorded["tmp"]
    assert CANARY in (tmp / "out" / "secret-web1.txt").read_text()  # the secret was really used
    outputs = []
    for fmt in ("csv", "json", "md"):
        path = tmp / f"export.{fmt}"
        assert prodgate(env, "register", "export", "--all", "--format", fmt, "--output", str(path)).returncode == 0
        outputs.append(path.read_text())
    run = _json(prodgate(env, "register", "runs", "--json"))[0]["run"]
    for args in (["show", run], ["changes", "--all"], ["form", "CHG-2026-0042"], ["archive", "ta"], ["verify"]):
        for flag in ([], ["--json"]):
            proc = prodgate(env, "register", *args, *flag)
            assert proc.returncode == 0, proc.stderr
            outputs.append(proc.stdout + proc.stderr)
    assert all(CANARY not in o for o in outputs)
    assert "password=********" in outputs[1] and "api_token=********" in outputs[1]
    files = [p for p in glob.glob(str(tmp / "**"), recursive=True) if os.path.isfile(p) and "/out/" not in p
             and "ansible-tmp" not in p and not p.endswith((".yml",))]
    assert any(p.endswith("register.db") for p in files)
    for path in files:
        with open(path, "rb") as fh:
            assert CANARY.encode() not in fh.read(), path
    assert CANARY not in recorded["proc"].stdout or "no_log" in recorded["proc"].stdout


def test_preflight_stops_the_run_before_any_task(recorded, tmp_path, controller_factory):
    # work on a copy: the other tests of this module read the recorded register
    tmp = tmp_path
    shutil.copy(recorded["env"]["PRODGATE_REGISTER_DB"], tmp / "register.db")
    env = dict(recorded["env"], PRODGATE_REGISTER_DB=str(tmp / "register.db"))
    marker = tmp / "marker"
    pb = tmp / "marker.yml"
    pb.write_text(f"- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.file:\n        path: {marker}\n"
                  "        state: touch\n")
    # 1. the register was tampered with
    conn = sqlite3.connect(env["PRODGATE_REGISTER_DB"])
    conn.execute("DROP TRIGGER register_entries_no_update")
    conn.execute("UPDATE register_entries SET body = replace(body, 'web1', 'webX') WHERE seq = (SELECT max(seq) - 1 FROM register_entries)")
    conn.commit()
    conn.close()
    proc = run_playbook(env, recorded["inv"], pb)
    assert proc.returncode == 69, proc.stdout + proc.stderr
    assert "failed its integrity check" in proc.stderr and not marker.exists()
    # 2. the register cannot be opened
    bad = dict(env, PRODGATE_REGISTER_DB=str(recorded["pb"]) + "/register.db")
    proc = run_playbook(bad, recorded["inv"], pb)
    assert proc.returncode == 69 and "cannot be opened" in proc.stderr and not marker.exists()
    # 3. a change without registration when the option requires one
    strict = dict(env, PRODGATE_REGISTER_DB=str(tmp / "other.db"), PRODGATE_REGISTER_REQUIRE_CHANGE="true")
    proc = run_playbook(strict, recorded["inv"], pb)
    assert proc.returncode == 69 and "prodgate_change_id is not set" in proc.stderr and not marker.exists()
    # 4. an AWX job on the (ephemeral) SQLite default
    awx = dict(env, PRODGATE_REGISTER_DB=str(tmp / "other.db"), JOB_ID="77", AWX_HOST="https://awx.example",
               PRODGATE_CONTROLLER_CONFIG=controller_factory(tmp / "awx-ee", awx=True))
    proc = run_playbook(awx, recorded["inv"], pb, "-e", "awx_job_id=77")
    assert proc.returncode == 69 and "AWX job" in proc.stderr and "register.db" in proc.stderr and not marker.exists()


HOLD = """
- hosts: all
  gather_facts: false
  tasks:
    - name: First change
      ansible.builtin.copy:
        dest: "{tmp}/first-{{{{ inventory_hostname }}}}"
        content: "1\\n"
    - name: Wait for the go
      ansible.builtin.wait_for:
        path: "{tmp}/go"
        timeout: 120
    - name: Must not start after a failed write
      ansible.builtin.file:
        path: "{tmp}/after-{{{{ inventory_hostname }}}}"
        state: touch
"""


def _bodies(db, like):
    if not os.path.exists(db):
        return []
    with open_store(db) as s:
        if s.schema_version() == 0:
            return []
        return [json.loads(b) for _seq, b in s.bodies(like=like)]


def test_failed_write_mid_run_stops_the_next_task_and_is_journaled(tmp_path, reg_env):
    env = dict(reg_env, PRODGATE_REGISTER_BUSY_TIMEOUT="300")
    inv = write_inventory(tmp_path / "hosts.yml", ["db1", "db2"])
    pb = tmp_path / "hold.yml"
    pb.write_text(HOLD.format(tmp=tmp_path))
    proc = subprocess.Popen([os.path.join(BIN, "ansible-playbook"), "-i", inv, str(pb), "-e", "prodgate_change_id=CHG-9"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = env["PRODGATE_REGISTER_DB"]
    wait_for(lambda: len([b for b in _bodies(db, '%"kind":"intent"%') if b["task"] == "Wait for the go"]) == 2)
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock: the register cannot be written
    (tmp_path / "go").touch()
    out, err = proc.communicate(timeout=120)
    lock.execute("ROLLBACK")
    lock.close()
    assert proc.returncode == 74, out + err
    assert "journal" in err and not glob.glob(str(tmp_path / "after-*"))
    journals = glob.glob(os.path.join(env["PRODGATE_REGISTER_JOURNAL_DIR"], "*", "*.jsonl"))
    assert len(journals) == 1
    kinds = [json.loads(json.loads(line)["body"])["kind"] for line in open(journals[0], encoding="utf-8")]
    assert kinds == ["outcome", "outcome", "run_close"]
    # the next run is refused until the journal is imported
    blocked = run_playbook(env, inv, pb)
    assert blocked.returncode == 69 and "import-journal" in blocked.stderr
    imported = _json(prodgate(env, "register", "import-journal", "--json"))
    assert imported["imported"][0]["imported"] == 3 and imported["imported"][0]["checkpoint"]
    assert glob.glob(journals[0] + ".imported")
    verify = prodgate(env, "register", "verify")
    assert verify.returncode == 0, verify.stdout
    runs = _json(prodgate(env, "register", "runs", "--json"))
    assert runs[0]["state"].startswith("aborted: register write failed")
    waited = [c for c in _json(prodgate(env, "register", "changes", "--json", "--all")) if c["task"] == "Wait for the go"]
    assert sorted(c["status"] for c in waited) == ["ok", "ok"]


def test_sigkilled_controller_leaves_outcome_unknown_and_a_valid_chain(tmp_path, reg_env):
    inv = write_inventory(tmp_path / "hosts.yml", ["app1", "app2"])
    pb = tmp_path / "slow.yml"
    pb.write_text(f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: Quick change
      ansible.builtin.copy:
        dest: "{tmp_path}/q-{{{{ inventory_hostname }}}}"
        content: "q\\n"
    - name: Long change
      ansible.builtin.command: sleep 90
""")
    db = reg_env["PRODGATE_REGISTER_DB"]
    proc = subprocess.Popen([os.path.join(BIN, "ansible-playbook"), "-i", inv, str(pb), "-e", "prodgate_change_id=CHG-K"],
                            env=reg_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: len([b for b in _bodies(db, '%"kind":"intent"%') if b["task"] == "Long change"]) == 2)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)  # the controller, mid-play
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its orphaned workers, which we started
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    unknown = _json(prodgate(reg_env, "register", "changes", "--json", "--status", "unknown"))
    assert sorted((c["host"], c["task"], c["status"]) for c in unknown) == \
        [("app1", "Long change", "outcome unknown"), ("app2", "Long change", "outcome unknown")]
    text = prodgate(reg_env, "register", "changes", "--status", "unknown").stdout
    assert text.count("outcome unknown") == 2
    runs = _json(prodgate(reg_env, "register", "runs", "--json"))
    assert runs[0]["state"].startswith("not closed")
    # no run ever signed a checkpoint: nothing outside the register vouches for it (exit 3, issue 13)
    assert prodgate(reg_env, "register", "verify", "--json").returncode == 3
    verify = prodgate(reg_env, "register", "verify", "--json", "--allow-unanchored")
    report = _json(verify)
    assert report["ok"] and report["unsigned_tail"] == report["entries"]
    # the register stays usable: the next run passes pre-flight and is recorded
    pb2 = tmp_path / "next.yml"
    pb2.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug:\n        msg: hi\n")
    assert run_playbook(reg_env, inv, pb2).returncode == 0
    assert _json(prodgate(reg_env, "register", "verify", "--json"))["ok"]


def test_ad_hoc_commands_are_recorded_too(tmp_path, reg_env):
    inv = write_inventory(tmp_path / "hosts.yml", ["adhoc1"])
    proc = subprocess.run([os.path.join(BIN, "ansible"), "-i", inv, "all", "-m", "ansible.builtin.file", "-a",
                           f"path={tmp_path}/touched state=touch", "-e", "prodgate_change_id=CHG-ADHOC"],
                          env=reg_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = _json(prodgate(reg_env, "register", "runs", "--json"))
    assert runs[0]["playbook"] == "__adhoc_playbook__" and runs[0]["change_id"] == "CHG-ADHOC" and runs[0]["state"] == "ok"
    changes = _json(prodgate(reg_env, "register", "changes", "--json"))
    assert [(c["host"], c["module"], c["status"], c["changed"]) for c in changes] == [("adhoc1", "ansible.builtin.file", "ok", True)]
