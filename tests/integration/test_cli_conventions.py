"""The `prodgate` command follows the conventions of git, ansible-galaxy and ara (issue 15, Deliver 4).

Each test runs the installed entry point (.venv/bin/prodgate) as a user would, through real pipes
and a real pseudo-terminal, on a register and a policy made for the test:

- errors are ``prodgate: error: ...`` on stderr; exit 1 for a refusal or a failed check, 2 for a
  usage error; a missing, unreadable or binary key file is one such line, never a traceback;
- a reader that goes away (``prodgate register runs | head -1``) ends the command quietly;
- list commands print a header row, take ``--limit`` (default 50) and ``-f table|json|csv|yaml``
  (``--json`` is ``-f json``); invalid ``--since`` / ``--status`` are usage errors;
- long work (``register verify``, ``register export``) shows progress when stderr is a terminal,
  nothing when it is piped;
- a system the policy does not know is an error everywhere (calendar, approve, evidence).
"""
import csv
import fcntl
import importlib.util
import io
import json
import os
import pty
import select
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.record import build_intent, build_outcome
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import canonical_json
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store

REPO = Path(__file__).resolve().parents[2]
PRODGATE = str(REPO / ".venv" / "bin" / "prodgate")
F_GETPIPE_SZ = 1032  # fcntl.F_GETPIPE_SZ (Linux), named in Python 3.10+ only on some builds

_spec = importlib.util.spec_from_file_location("cli_conventions_world", REPO / "tests" / "approval_world.py")
approval_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(approval_world)

TASK = {"name": "Write the config", "uuid": "c", "module": "ansible.builtin.copy", "role": None}


def make_register(path, runs):
    """A register of ``runs`` closed runs, each changing one host once (every third one fails)."""
    store = open_store(str(path))
    store.migrate()
    bodies = []
    for i in range(runs):
        run = f"run{i:06d}-0000-4000-8000-000000000000"
        ts = f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00.000000Z"
        bodies.append({"kind": "run_open", "run": run, "ts": ts, "playbook": "/srv/playbooks/upgrade.yml", "user": "ops",
                       "check_mode": False, "change": {"id": f"CHG-{i}", "type": "version_update", "system": "ta",
                                                       "version": "1.0"}})
        bodies.append(build_intent(run, "app1", TASK, ts))
        bodies.append(build_outcome(run, "app1", TASK, "failed" if i % 3 == 0 else "ok", {"changed": True}, ts,
                                    duration_ms=3))
        bodies.append({"kind": "run_close", "run": run, "ts": ts, "stats": {}, "failed_hosts": []})
    store.append([canonical_json(b) for b in bodies])
    store.close()
    return str(path)


@pytest.fixture(name="env")
def fixture_env(tmp_path):
    """The environment of a user whose register, keys and anchors all live in the test's folder."""
    home = tmp_path / "home"
    home.mkdir()
    state = tmp_path / "state"
    env = dict(os.environ, HOME=str(home), PRODGATE_REGISTER_DB=str(tmp_path / "register.db"),
               PRODGATE_REGISTER_SIGNING_KEY=str(state / "signing.key"),
               PRODGATE_REGISTER_ANCHOR=str(state / "anchor-{register_id}.json"),
               PRODGATE_REGISTER_JOURNAL_DIR=str(state / "journal"), COLUMNS="80")
    for name in ("PRODGATE_POLICY", "PRODGATE_POLICY_ROOT", "PRODGATE_REGISTER_WITNESS", "FORCE_COLOR"):
        env.pop(name, None)
    return env


@pytest.fixture(name="register")
def fixture_register(env):
    return make_register(env["PRODGATE_REGISTER_DB"], 120)


def prodgate(env, *args, **kw):
    return subprocess.run([PRODGATE, *args], env=env, capture_output=True, text=True, timeout=120, check=False, **kw)


def assert_error(proc, code, *words):
    """One ``prodgate: error:`` line on stderr naming ``words``, exit ``code``, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("prodgate: error: "), proc.stderr
    for word in words:
        assert word in last, (word, last)
    return last


# ---- exit codes: 1 refusal or failed check, 2 usage ------------------------------------------

def test_a_refusal_exits_1_and_a_usage_error_exits_2(env, register):
    assert_error(prodgate(env, "register", "form", "CHG-nope"), 1, "no run of change", "CHG-nope")
    with_json = prodgate(env, "register", "form", "CHG-nope", "--json")
    assert_error(with_json, 1, "CHG-nope")
    assert json.loads(with_json.stdout) == {"ok": False, "error": with_json.stderr.strip()[len("prodgate: error: "):]}
    assert_error(prodgate(env, "register", "form"), 2, "CHANGE")                 # missing argument
    assert_error(prodgate(env, "register", "runs", "--bogus"), 2, "--bogus")     # unknown option
    assert_error(prodgate(env, "register", "runs", "-f", "xml"), 2, "'xml'", "'table', 'json', 'csv', 'yaml'")
    assert_error(prodgate(env, "register", "runs", "--limit", "-1"), 2, "'-1'", ">= 0")
    assert_error(prodgate(env, "nonsense"), 2, "nonsense")
    assert_error(prodgate(env, "policy", "check", "policy.yml", "--at", "tomorrow"), 2, "--at", "'tomorrow'",
                 "ISO-8601")
    assert_error(prodgate(env, "evidence", "verify", "--policy", "p.yml", "--evidence", "e", "--at", "2026-03-02T09:00"),
                 2, "--at", "no UTC offset", "+08:00")
    assert prodgate(env, "register").returncode == 2  # a group without its sub-command


def test_a_failed_check_exits_1_like_evidence_verify(tmp_path, env):
    world = approval_world.World(tmp_path / "world", sign=False)
    proc = prodgate(env, "policy", "check", world.policy_path)
    assert proc.returncode == 1 and "NOT OK" in proc.stdout and "is not signed" in proc.stdout, proc.stdout + proc.stderr
    world.sign_policy()
    assert prodgate(env, "policy", "check", world.policy_path).returncode == 0
    binding = {k: v for k, v in world.binding().items() if k != "launcher"}
    change = world.write_yaml("change.yml", binding)
    evidence = world.write_evidence([world.approve("plan_submission", "it_head", "henry")])
    proc = prodgate(env, "evidence", "verify", "--policy", world.policy_path, "--evidence", evidence,
                    "--change", change, "--launcher", "ivan")
    assert proc.returncode == 1 and "RESULT: INCOMPLETE" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("args, words", [
    (["--since", "yesterday"], ["--since", "'yesterday'", "2026-01-31"]),
    (["--until", "31/01/2026"], ["--until", "'31/01/2026'", "ISO 8601"]),
    (["--status", "failed,broken"], ["--status", "'broken'", "changed, ok, failed, unreachable, skipped, unknown"]),
])
def test_invalid_filters_are_usage_errors(env, register, args, words):
    assert_error(prodgate(env, "register", "changes", *args), 2, *words)
    assert_error(prodgate(env, "register", "export", *args), 2, *words)


def test_valid_filters_still_filter(env, register):
    failed = json.loads(prodgate(env, "register", "changes", "--status", "failed", "--limit", "0", "-f", "json").stdout)
    assert len(failed) == 40 and {r["status"] for r in failed} == {"failed"}
    since = json.loads(prodgate(env, "register", "changes", "--since", "2026-01-28T08:00+08:00", "--limit", "0",
                                "--json").stdout)
    assert since and all(r["ts"] >= "2026-01-28T00:00:00" for r in since)
    assert len(since) == len([i for i in range(120) if 1 + i % 28 == 28])


# ---- files: missing, unreadable, binary ------------------------------------------------------

def test_missing_and_binary_key_files_are_one_clear_line(tmp_path, env, register):
    missing = str(tmp_path / "nowhere.key")
    binary = tmp_path / "binary.key"
    binary.write_bytes(bytes(range(256)) * 4)
    assert_error(prodgate(env, "keys", "show", missing), 1, missing, "cannot be read", "prodgate keys generate")
    assert_error(prodgate(env, "keys", "show", str(binary)), 1, str(binary), "not a key")
    assert_error(prodgate(env, "register", "verify", "--trusted-key", missing), 1, missing, "give the .pub file")
    assert_error(prodgate(env, "register", "verify", "--trusted-key", str(binary)), 1, str(binary), "not a register key")
    common = ["--person", "rita", "--role", "risk_compliance", "--stage", "go_live", "--change-id", "C1", "--system", "wiki",
              "--environment", "production", "--change-type", "routine", "--out", str(tmp_path)]
    assert_error(prodgate(env, "approve", "--key", missing, *common), 1, missing)
    assert_error(prodgate(env, "approve", "--key", str(binary), *common), 1, str(binary))
    assert_error(prodgate(env, "approve", "--key", str(binary), "--change", missing, *common), 1, missing)
    assert_error(prodgate(env, "approve", "--key", str(binary), "--change", str(binary), *common), 1, str(binary),
                 "change_id")
    assert_error(prodgate(env, "policy", "check", missing), 1, missing)
    assert_error(prodgate(env, "policy", "check", str(binary)), 1)
    assert_error(prodgate(env, "register", "import-journal", str(binary)), 1, "not text")
    assert_error(prodgate(env, "register", "export", "--all", "-o", str(tmp_path / "no" / "such" / "dir.json")), 1,
                 "No such file or directory")


# ---- list commands: header, --limit, formats ---------------------------------------------------

def test_list_commands_print_a_header_and_the_last_50_rows(env, register):
    for command, header in (("runs", ["RUN", "STARTED", "CHANGE", "SYSTEM", "STATE", "PLAYBOOK"]),
                            ("changes", ["SEQ", "TIME", "CHANGE", "HOST", "STATUS", "MODULE", "TASK"])):
        proc = prodgate(env, "register", command)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0].split()[:len(header)] == header
        assert len(lines) == 1 + 50
        assert "CHG-119" in lines[-1] and "CHG-70 " in lines[1] + " "  # the most recent 50, oldest first
        assert "showing the last 50 of 120" in proc.stderr and "--limit 0" in proc.stderr
        few = prodgate(env, "register", command, "--limit", "3").stdout.splitlines()
        assert len(few) == 4 and few[0] == lines[0] and few[1:] == lines[-3:]
        every = prodgate(env, "register", command, "--limit", "0")
        assert len(every.stdout.splitlines()) == 121 and not every.stderr
    shown = prodgate(env, "register", "show", "run000119").stdout.splitlines()  # a run's changes: the same table
    assert shown[-2].split() == ["SEQ", "TIME", "CHANGE", "HOST", "STATUS", "MODULE", "TASK", "NOTE"]
    assert shown[-1].split()[2:5] == ["CHG-119", "app1", "changed"]


def test_list_formats_parse_and_carry_every_field(env, register):
    for command in ("runs", "changes"):
        as_json = json.loads(prodgate(env, "register", command, "-f", "json", "--limit", "7").stdout)
        assert len(as_json) == 7 and as_json[-1]["change_id"] == "CHG-119"
        assert json.loads(prodgate(env, "register", command, "--json", "--limit", "7").stdout) == as_json
        as_yaml = yaml.safe_load(prodgate(env, "register", command, "-f", "yaml", "--limit", "7").stdout)
        assert as_yaml == as_json
        rows = list(csv.DictReader(io.StringIO(prodgate(env, "register", command, "-f", "csv", "--limit", "7").stdout)))
        assert [r["change_id"] for r in rows] == [r["change_id"] for r in as_json]
        assert [str(r["seq"] if command == "changes" else r["run"]) for r in as_json] == \
            [r["seq" if command == "changes" else "run"] for r in rows]
    runs = json.loads(prodgate(env, "register", "runs", "--json").stdout)
    assert {"run", "playbook", "started", "state", "change_id", "system", "entries"} <= set(runs[0])
    empty = prodgate(env, "register", "changes", "--system", "none", "-f", "csv")
    assert empty.returncode == 0 and empty.stdout.splitlines()[0].startswith("seq,ts,run,change_id")
    assert prodgate(env, "register", "changes", "--system", "none").stdout.split() == \
        ["SEQ", "TIME", "CHANGE", "HOST", "STATUS", "MODULE", "TASK", "NOTE"]


# ---- a closed pipe ---------------------------------------------------------------------------

def _pipe_capacity():
    read, write = os.pipe()
    try:
        return fcntl.fcntl(write, F_GETPIPE_SZ)
    finally:
        os.close(read)
        os.close(write)


def test_a_closed_pipe_ends_quietly(tmp_path, env):
    db = make_register(tmp_path / "big.db", 4000)
    env = dict(env, PRODGATE_REGISTER_DB=db)
    full = prodgate(env, "register", "runs", "--limit", "0", "-f", "json")
    assert len(full.stdout) > 4 * _pipe_capacity() and len(json.loads(full.stdout)) == 4000
    for command in ("prodgate register runs | head -1",
                    "prodgate register runs --limit 0 -f json | head -1",
                    "prodgate register changes --limit 0 -f csv | head -1"):
        script = f"{command}; echo \"exit=${{PIPESTATUS[0]}}\" >&2"
        proc = subprocess.run(["bash", "-c", script], env=dict(env, PATH=f"{REPO / '.venv' / 'bin'}:{env['PATH']}"),
                              capture_output=True, text=True, timeout=120, check=False)
        assert len(proc.stdout.splitlines()) == 1, proc.stdout[:500]
        assert proc.stdout.startswith(("RUN ", "[", "seq,")), proc.stdout
        noise = [line for line in proc.stderr.splitlines() if not line.startswith(("exit=", "prodgate: showing"))]
        assert not noise, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] in ("exit=0", "exit=141"), proc.stderr
    # the reader is gone before the first byte: the table's first write meets the closed pipe
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([PRODGATE, "register", "runs", "--limit", "0"], env=env, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write)
    assert proc.returncode == 141 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


# ---- progress on a terminal, quiet when piped ------------------------------------------------

def _with_stderr_on_a_terminal(env, *args):
    """Run prodgate with stdout piped and stderr on a pseudo-terminal; (exit code, stdout, terminal bytes)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([PRODGATE, *args], env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    stdout = b""
    while True:
        ready, _w, _x = select.select([master, proc.stdout], [], [], 60)
        assert ready, "prodgate produced nothing for 60 s"
        if master in ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal closed it
                chunk = b""
            if not chunk:
                stdout += proc.stdout.read()
                break
            seen += chunk
        if proc.stdout in ready:
            data = proc.stdout.read1(65536)
            stdout += data
            if not data and proc.poll() is not None:
                break
    os.close(master)
    return proc.wait(timeout=60), stdout.decode(), seen.decode(errors="replace")


def test_long_work_shows_progress_on_a_terminal_and_nothing_when_piped(tmp_path, env):
    env = dict(env, PRODGATE_REGISTER_DB=make_register(tmp_path / "progress.db", 3000))
    code, out, terminal = _with_stderr_on_a_terminal(env, "register", "verify", "--allow-unanchored")
    assert code == 0 and "verify: OK" in out, (out, terminal)
    assert "verifying the register" in terminal and "12000/12000" in terminal, terminal
    piped = prodgate(env, "register", "verify", "--allow-unanchored")
    assert piped.returncode == 0 and "verify: OK" in piped.stdout
    assert "verifying" not in piped.stderr and "\x1b" not in piped.stderr + piped.stdout, piped.stderr

    export = tmp_path / "export.json"
    code, out, terminal = _with_stderr_on_a_terminal(env, "register", "export", "--all", "-o", str(export))
    assert code == 0 and "reading the register" in terminal and "exporting entries" in terminal, terminal
    assert len(json.loads(export.read_text())["changes"]) == 3000
    piped = prodgate(env, "register", "export", "--all")
    assert piped.returncode == 0 and not piped.stderr and len(json.loads(piped.stdout)["changes"]) == 3000


# ---- unknown systems -------------------------------------------------------------------------

def test_a_system_the_policy_does_not_know_is_an_error_everywhere(tmp_path, env):
    world = approval_world.World(tmp_path / "world")
    for args in (["calendar", "windows", "--policy", world.policy_path, "--system", "nope", "--from", "2025-09-29T08:00",
                  "--to", "2025-09-29T12:00"],
                 ["calendar", "explain", "--policy", world.policy_path, "--system", "nope", "--at", "2025-09-29T10:00"]):
        assert_error(prodgate(env, *args), 1, "system 'nope' is not in the policy's systems catalogue", "ta-core")
        known = prodgate(env, *[a if a != "nope" else "ta-core" for a in args])
        assert known.returncode in (0, 1) and "Traceback" not in known.stderr and known.stdout, known.stderr
    key = world.write_key("rita")
    assert_error(prodgate(env, "approve", "--key", key, "--person", "rita", "--role", "risk_compliance", "--stage", "go_live",
                          "--change-id", "C1", "--system", "nope", "--environment", "production", "--change-type", "routine",
                          "--policy", world.policy_path, "--out", str(tmp_path)), 1, "'nope'")
    assert not list(tmp_path.glob("C1.*.json"))
    evidence = world.write_evidence([world.approve("plan_submission", "it_head", "henry")])
    # evidence verify is a check: the unknown system is its failed verdict (exit 1), in its report
    proc = prodgate(env, "evidence", "verify", "--policy", world.policy_path, "--evidence", evidence, "--change-id", "C1",
                    "--system", "nope", "--environment", "production", "--change-type", "routine")
    assert proc.returncode == 1 and "system 'nope' is not in the policy's systems catalogue" in proc.stdout, proc.stdout
