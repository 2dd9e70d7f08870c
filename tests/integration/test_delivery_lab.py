"""Release delivery on the podman lab (issue 8): go_live.yml, upgrade.yml, dml_apply, the register.

Runs on lb1, app1, app2 and db1 only (brought up with playbooks/lab.yml --limit; PostgreSQL on db1
prepared by playbooks/prepare_environment.yml --limit db1 when it is not answering). The lab not
coming up is a failure, never a skip. The shipped playbooks run exactly as production runs them
(issue 11, Deliver 4: there is no switch that turns the gates off): the change window, the approval
gate and change_complete decide every run from the controller trust settings, a signed lab policy
and signed approvals that tests/integration/lab_world.py creates; the change register is on.
Sequence (one module fixture, about 4 minutes):
  reset -> go-live 1.0.0 -> tampered 1.1.0 refused -> 1.1.0 with a COPY data script refused
  -> upgrade 1.1.0 -> upgrade 1.2.0 (health check fails, automatic rollback) -> rollback.yml (back to 1.0.0)
"""
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
SAMPLE = ROOT / "tests" / "fixtures" / "sampleapp"
HOSTS = "lb1,app1,app2,db1"
NGINX = "http://127.0.0.1:18080/version"
sys.path.insert(0, str(SAMPLE))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_bundles  # noqa: E402  pylint: disable=wrong-import-position,import-error
from lab_world import LabWorld  # noqa: E402  pylint: disable=wrong-import-position


def delivery_change(world, change_id, change_type, bundle=None, sha=None, version=None, extra_vars=None):
    """A change of sampleapp on the delivery hosts, its approvals signed; returns its run variables' file."""
    run_vars = dict(extra_vars or {})
    if bundle is not None:
        run_vars.update(delivery_bundle=str(bundle), delivery_bundle_sha256=sha)
    vars_file = world.change(change_id, change_type, "sampleapp", version=version, artifacts=[sha] if sha else [],
                             targets=HOSTS.split(","), extra_vars=run_vars)
    world.sign(change_id)
    return vars_file


def _run(cmd, env, timeout=600):
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _podman(host, *cmd):
    return subprocess.run(["podman", "exec", f"prodgate-lab-{host}", *cmd], capture_output=True, text=True,
                          timeout=60, check=False)


def _node_version(host):
    proc = _podman(host, "curl", "-fsS", "--max-time", "3", "http://127.0.0.1:8080/version")
    assert proc.returncode == 0, f"{host}: /version failed: {proc.stderr}"
    return json.loads(proc.stdout)["version"]


def _nginx_version():
    with urllib.request.urlopen(NGINX, timeout=5) as resp:  # nosec: loopback, the lab's load balancer
        return json.loads(resp.read())["version"]


def _ledger():
    proc = _podman("db1", "runuser", "-u", "postgres", "--", "psql", "-At", "-F", "|", "-d", "appdb", "-c",
                   "SELECT script, change_id FROM prodgate_dml_ledger ORDER BY script")
    assert proc.returncode == 0, proc.stderr
    return [tuple(line.split("|")) for line in proc.stdout.splitlines() if line]


def _bad_bundle(out):
    """1.1.0 plus a 'data script' that loads a file with COPY: must be refused by dml_apply."""
    src = out / "bad-src"
    build_bundles.assemble("1.1.0", str(src))
    (src / "data" / "003_load_file.sql").write_text(
        "-- not DML: loads a file (Art. 10(3) forbids it)\nCOPY sampleapp_settings FROM '/etc/passwd';\n")
    meta = json.loads((src / "release.yml").read_text())
    meta["version"] = "1.1.1"
    (src / "release.yml").write_text(json.dumps(meta))
    build = json.loads((src / "app" / "build.json").read_text())
    build["version"] = "1.1.1"
    (src / "app" / "build.json").write_text(json.dumps(build))
    proc = subprocess.run([str(BIN / "prodgate"), "release", "build", str(src), "-o", str(out / "sampleapp-1.1.1.tar.gz"),
                           "--json"], capture_output=True, text=True, check=True)
    return out / "sampleapp-1.1.1.tar.gz", json.loads(proc.stdout)


def _tampered(bundle, out):
    """The same bundle with app/sampleapp.py changed after the build (the manifest digest no longer matches)."""
    dest = out / "sampleapp-1.1.0-tampered.tar.gz"
    with tarfile.open(bundle) as src, tarfile.open(dest, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "app/sampleapp.py":
                data += b"\n# injected after the approval\n"
                member.size = len(data)
            dst.addfile(member, None if data is None else io.BytesIO(data))
    return dest


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _bring_up(env):
    rc, out = _run([str(BIN / "ansible-playbook"), "playbooks/lab.yml", "-e", "lab_state=started", "--limit", HOSTS], env)
    if rc != 0:
        pytest.fail(f"the lab did not come up (playbooks/lab.yml --limit {HOSTS}):\n{out[-3000:]}")


def _prepare_db(world, env, stamp):
    """PostgreSQL on db1, through the gated prepare_environment.yml (an environment change, Art. 25)."""
    if _podman("db1", "pg_isready", "-q").returncode == 0:
        return
    change = f"T-{stamp}-PREP"
    vars_file = world.change(change, "environment", "online_acceptance", targets=["db1"])
    world.sign(change)
    rc, out = _run([str(BIN / "ansible-playbook"), "playbooks/prepare_environment.yml", "--limit", "db1",
                    "-e", f"@{vars_file}"], env, timeout=1200)
    if rc != 0 or _podman("db1", "pg_isready", "-q").returncode != 0:
        pytest.fail(f"PostgreSQL on db1 is not ready after prepare_environment.yml --limit db1:\n{out[-3000:]}")


def build_all(work, env):
    built = {}
    for line in subprocess.run([sys.executable, str(SAMPLE / "build_bundles.py"), str(work / "bundles")], capture_output=True,
                               text=True, check=True, env=env).stdout.splitlines():
        item = json.loads(line)
        built[item["version"]] = (item["path"], item["sha256"])
    return built


@pytest.fixture(scope="module", name="lab")
def fixture_lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("delivery")
    world = LabWorld(work / "world")
    env = world.env()
    # The lab's own plays (containers up, the demo reset) are not production changes: not registered.
    lab_env = world.env(callback=False)
    stamp = time.strftime("%Y%m%d%H%M%S")
    _bring_up(lab_env)
    _prepare_db(world, env, stamp)
    built = build_all(work, env)
    results = {}

    def play(name, book, change, change_type, bundle=None, sha=None, version=None, extra_vars=None):
        vars_file = delivery_change(world, change, change_type, bundle, sha, version, extra_vars)
        rc, out = _run([str(BIN / "ansible-playbook"), book, "--limit", HOSTS, "-e", f"@{vars_file}", "--diff"], env)
        (work / f"{name}.log").write_text(out)
        results[name] = (rc, out)
        return rc, out

    rc, out = _run([str(BIN / "ansible-playbook"), "playbooks/demo.yml", "--tags", "demo_reset", "--limit", HOSTS], lab_env)
    assert rc == 0, out[-3000:]
    rc, out = play("golive", "playbooks/go_live.yml", f"T-{stamp}-GL", "initial_go_live", *built["1.0.0"], version="1.0.0")
    assert rc == 0, f"go-live of 1.0.0 failed:\n{out[-4000:]}"
    tampered = _tampered(built["1.1.0"][0], work)
    play("tampered", "playbooks/upgrade.yml", f"T-{stamp}-TAMPER", "version_update", tampered, _sha256(tampered), "1.1.0")
    bad = _bad_bundle(work)[0]
    play("copy", "playbooks/upgrade.yml", f"T-{stamp}-COPY", "version_update", bad, _sha256(bad), "1.1.1")
    results["after_refusals"] = {h: _node_version(h) for h in ("app1", "app2")}
    rc, out = play("up110", "playbooks/upgrade.yml", f"T-{stamp}-UP110", "version_update", *built["1.1.0"], version="1.1.0")
    assert rc == 0, f"upgrade to 1.1.0 failed:\n{out[-4000:]}"
    results["ledger_after_110"] = _ledger()
    play("up120", "playbooks/upgrade.yml", f"T-{stamp}-UP120", "version_update", *built["1.2.0"], version="1.2.0")
    results["after_120"] = ({h: _node_version(h) for h in ("app1", "app2")}, {_nginx_version() for dummy in range(10)})
    # manual rollback (Art. 28) of the 1.1.0 upgrade: back to the last good release before it, never to the broken 1.2.0
    play("rollback", "playbooks/rollback.yml", f"T-{stamp}-RB", "non_routine",
         extra_vars={"prodgate_rollback_of": f"T-{stamp}-UP110"})
    results["after_rollback"] = ({h: _node_version(h) for h in ("app1", "app2")}, {_nginx_version() for dummy in range(10)})
    results.update(stamp=stamp, env=env, work=work, world=world)
    return results


def register_form(env, world, change):
    """The Art. 27 form of ``change`` from the lab's register (what an auditor reads)."""
    rc, out = _run([str(BIN / "prodgate"), "register", "form", "--db", world.register_db, change, "--json"], env)
    assert rc == 0, out
    return json.loads(out)


def test_every_run_passed_the_window_and_the_gate(lab):
    """Issue 11 Deliver 4: the delivery runs are gated as in production; each approved change consumed
    its approvals, was launched by an implementer (the real user, root = ivan in the lab policy) and
    was recorded as completed."""
    for name, suffix in (("golive", "GL"), ("up110", "UP110"), ("rollback", "RB")):
        rc, out = lab[name]
        assert rc == 0 and "Check the change window before anything is consumed" in out, out[-2000:]
        form = register_form(lab["env"], lab["world"], f"T-{lab['stamp']}-{suffix}")
        assert form["gate"]["status"] == "gated", form["gate"]
        assert [w["allowed"] for w in form["window"]] and all(w["allowed"] for w in form["window"]), form["window"]
        decision = form["approvals"][-1]
        assert decision["consumed"] is True and decision["launcher"] == "ivan", decision
        assert decision["implementers"] == ["ivan", "jane"] and decision["supervisor"] == "sam"
        completed = [t["task"] for tasks in form["per_host"].values() for t in tasks if "as completed" in str(t["task"])]
        assert completed, f"{name}: change_complete did not record the change"
    assert "FORMAL GO-LIVE" in lab["golive"][1]


def test_tampered_bundle_is_refused_before_any_change(lab):
    rc, out = lab["tampered"]
    assert rc != 0
    assert "refused" in out and "digest mismatch for app/sampleapp.py" in out, out[-3000:]
    assert "Drain the node" not in out  # stopped in the gate play, before any host was touched
    assert lab["after_refusals"] == {"app1": "1.0.0", "app2": "1.0.0"}


def test_copy_in_a_data_script_is_refused_and_nothing_is_deployed(lab):
    rc, out = lab["copy"]
    assert rc != 0
    assert "data/003_load_file.sql" in out and "COPY" in out, out[-3000:]
    assert "UPGRADE FAILED on app1" in out
    assert lab["after_refusals"] == {"app1": "1.0.0", "app2": "1.0.0"}


def test_ledger_applies_each_script_once(lab):
    stamp = lab["stamp"]
    ledger = dict(lab["ledger_after_110"])
    assert len(lab["ledger_after_110"]) == len(ledger)  # one row per script
    # 1.0.0's scripts were applied by the go-live and skipped by the 1.1.0 upgrade, which applied only its new one
    assert ledger == {"data/001_greeting.sql": f"T-{stamp}-GL", "migrations/001_settings_table.sql": f"T-{stamp}-GL",
                      "data/002_greeting_1_1.sql": f"T-{stamp}-UP110"}
    assert "data/003_load_file.sql" not in ledger  # the refused script never ran


def test_failed_120_upgrade_is_rolled_back_to_110_everywhere(lab):
    rc, out = lab["up120"]
    assert rc != 0, "the broken 1.2.0 must fail its health check"
    assert "ROLLED BACK to 1.1.0" in out, out[-3000:]
    assert lab["after_120"] == ({"app1": "1.1.0", "app2": "1.1.0"}, {"1.1.0"})


def test_manual_rollback_returns_every_node_to_the_release_before_110(lab):
    rc, out = lab["rollback"]
    assert rc == 0, f"rollback.yml failed:\n{out[-4000:]}"
    # app1 had the broken 1.2.0 attempted and rolled back: the broken release is not a rollback target
    assert lab["after_rollback"] == ({"app1": "1.0.0", "app2": "1.0.0"}, {"1.0.0"})


def test_register_shows_the_failed_attempt_and_the_rollback(lab):
    change = f"T-{lab['stamp']}-UP120"
    db = ["--db", lab["world"].register_db]
    rc, out = _run([str(BIN / "prodgate"), "register", "changes", *db, "--change", change, "--all", "--limit", "0", "--json"], lab["env"])
    assert rc == 0, out
    rows = json.loads(out)
    rows = rows.get("changes", rows) if isinstance(rows, dict) else rows
    failed = [r for r in rows if r.get("status") == "failed"]
    assert any(r.get("host") == "app1" and "health" in str(r.get("task", "")).lower() for r in failed), failed
    rollback = [r for r in rows if "Switch current back to the previous release" in str(r.get("task", ""))
                and r.get("status") == "ok" and r.get("changed")]
    assert [r.get("host") for r in rollback] == ["app1"], [(r.get("host"), r.get("task"), r.get("status")) for r in rows]
    # the rollback comes after the failure in the register's order
    assert min(r["seq"] for r in rollback) > min(r["seq"] for r in failed)
    assert not any(r.get("host") == "app2" and r.get("changed") and "Switch" in str(r.get("task", "")) for r in rows)
    # the Art. 27 form of the change names the automatic rollback and the release it went back to
    rc, out = _run([str(BIN / "prodgate"), "register", "form", *db, change, "--json"], lab["env"])
    assert rc == 0, out
    assert [(r["host"], r["to"]) for r in json.loads(out)["rolled_back"]] == [("app1", "1.1.0")], out[-2000:]
    rc, out = _run([str(BIN / "prodgate"), "register", "verify", *db], lab["env"])
    assert rc == 0, out


def test_cleanup_nothing_left_drained(lab):
    proc = _podman("lb1", "sh", "-c", "ls /etc/nginx/prodgate-drained/sampleapp 2>/dev/null || true")
    assert proc.stdout.strip() == "", f"nodes left drained: {proc.stdout}"
    shutil.rmtree(lab["work"] / "bad-src", ignore_errors=True)
