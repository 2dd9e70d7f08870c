"""AWX's execution path (issue 12, Deliver 3): a job streamed the way AWX sends it to an execution
node, `ansible-runner transmit | ansible-runner worker | ansible-runner process`, the worker running
it with process isolation in the prodgate execution environment (podman), with what AWX injects:
`awx_job_id` and `awx_user_name` as extra variables, the credentials' PRODGATE_* environment
variables and files, and the change register on a real PostgreSQL. The change window, the approval
gate, a change on the job's local target and the completion run end to end; the register then
verifies, names the AWX job and user, and holds the gate's decision.

The EE is the image `make ee` built; the checkout's collection is mounted over the one baked into
it, so the test runs the code under test (the image is rebuilt only when its recipe changes)."""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import yaml

from register_helpers import BIN, REPO
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import load_public_keys
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import verify_register

sys.path.insert(0, str(Path(REPO) / "tests" / "integration"))
from lab_world import LabWorld  # noqa: E402  pylint: disable=wrong-import-position

CHANGE = "CHG-AWX-0001"
TARGET = "ee-local"
PLAYBOOK = Path(REPO) / "tests" / "integration" / "playbooks" / "awx_change.yml"
EE_COLLECTION = "/usr/share/ansible/collections/ansible_collections/prodgate/deploy"


def _secret(path, data):
    path.write_bytes(data)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def private_data_dir(root, world, pg_url, image, state, job_id, user, change=CHANGE, load_tasks=0, without=()):  # pylint: disable=too-many-arguments
    """A private data dir as AWX builds it for one job of the `prodgate` job templates."""
    pdd = root / "pdd"
    for sub in ("project", "inventory", "env", "credentials"):
        (pdd / sub).mkdir(parents=True)
    play = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))
    # Load for the scale-out figures: more recorded tasks after the change, each intent and outcome an entry.
    at = [t["name"] for t in play[0]["tasks"]].index("Make the change") + 1
    play[0]["tasks"][at:at] = [{"name": f"Recorded step {i}", "ansible.builtin.debug": {"msg": i}, "changed_when": True}
                               for i in range(load_tasks)]
    (pdd / "project" / "awx_change.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    (pdd / "inventory" / "hosts").write_text(
        f"[ee_targets]\n{TARGET} ansible_connection=local ansible_python_interpreter=/opt/ee/bin/python3\n")
    # The credentials' injector files (awx/objects.yml: prodgate governance, prodgate change register).
    _secret(pdd / "credentials" / "policy.yml", world.policy_path.read_bytes())
    _secret(pdd / "credentials" / "governance-root.yml", world.root_path.read_bytes())
    _secret(pdd / "credentials" / "register-signing.key", world.register_key.read_bytes())
    shutil.copytree(world.evidence_dir(change), pdd / "evidence" / change)
    envvars = {
        "PRODGATE_POLICY": "/runner/credentials/policy.yml",
        "PRODGATE_POLICY_ROOT": "/runner/credentials/governance-root.yml",
        "PRODGATE_TEST_CLOCK_ENVIRONMENTS": "",
        "PRODGATE_REGISTER_DB": pg_url,
        "PRODGATE_REGISTER_SIGNING_KEY": "/runner/credentials/register-signing.key",
        "PRODGATE_REGISTER_ANCHOR": "/var/lib/prodgate/anchor-{register_id}.json",
        "PRODGATE_REGISTER_JOURNAL_DIR": "/var/lib/prodgate/journal",
        "PRODGATE_REGISTER_WITNESS": "",  # the optional field left empty: a witness file next to the anchor
        "JOB_ID": str(job_id),
    }
    for name in without:
        del envvars[name]
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    # What AWX puts in the job's extra vars: its own identity and the survey's two answers. The
    # change's other fields (type, system, environment, implementers, supervisor) are passed here
    # too: a survey-only launch (awx/objects.yml) does not carry them yet (docs/awx.md, "Not done").
    run_vars = yaml.safe_load(world.vars_file(change).read_text(encoding="utf-8"))
    run_vars.update({"prodgate_evidence": f"/runner/evidence/{change}", "awx_job_id": job_id, "awx_user_name": user,
                     "awx_job_template_name": "prodgate go-live", "awx_job_launch_type": "manual",
                     "awx_inventory_name": "prodgate production"})
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(run_vars))
    (pdd / "env" / "settings").write_text(yaml.safe_dump({
        "process_isolation": True,
        "process_isolation_executable": "podman",
        "container_image": image,
        # Rootful podman: the EE's user 1000 could not read the 0600 files of the private data dir.
        # The register is on the host's loopback; the anchor and journal on a volume that outlives the job.
        "container_options": ["--user=0", "--network=host", "--pull=never",
                              "-v", f"{REPO}:{EE_COLLECTION}:ro"],
        "container_volume_mounts": [f"{state}:/var/lib/prodgate:Z"],
        "job_timeout": 600,
    }))
    return pdd


def run_like_awx(pdd, work, out):
    """transmit | worker | process, as the AWX control node, the execution node and back; returns
    the job's events in order and the exit code of `process`."""
    started = time.monotonic()
    transmit = subprocess.Popen([os.path.join(BIN, "ansible-runner"), "transmit", str(pdd), "-p", "awx_change.yml"],
                                stdout=subprocess.PIPE)
    worker = subprocess.Popen([os.path.join(BIN, "ansible-runner"), "worker", "--private-data-dir", str(work)],
                              stdin=transmit.stdout, stdout=subprocess.PIPE)
    transmit.stdout.close()
    process = subprocess.run([os.path.join(BIN, "ansible-runner"), "process", str(out)], stdin=worker.stdout,
                             capture_output=True, text=True, timeout=900, check=False)
    worker.stdout.close()
    assert transmit.wait(timeout=60) == 0
    process.worker_rc = worker.wait(timeout=60)  # the job's exit code, as the execution node reports it
    process.wall = time.monotonic() - started
    events = [json.loads(p.read_text(encoding="utf-8")) for p in (out / "artifacts" / "job_events").glob("*.json")]
    events.sort(key=lambda e: e["counter"])
    return events, process


def stdout_of(events):
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(e.get("stdout", "") for e in events))


def test_a_gated_change_runs_the_way_awx_runs_it(tmp_path, pg_url, ee_image):
    world = LabWorld(tmp_path / "world", register_db=pg_url)
    world.change(CHANGE, "non_routine", "online_acceptance", targets=[TARGET])
    world.sign(CHANGE)
    state = tmp_path / "state"
    state.mkdir()
    pdd = private_data_dir(tmp_path, world, pg_url, ee_image, state, job_id=4242, user="ivan")

    events, process = run_like_awx(pdd, tmp_path / "worker", tmp_path / "out")
    stdout = stdout_of(events)
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    assert not stats["failures"] and not stats["dark"], stdout[-6000:] + process.stderr[-2000:]
    assert stats["ok"] == {TARGET: 4} and stats["changed"] == {TARGET: 3}
    assert process.returncode == 0 and process.worker_rc == 0, process.stdout + process.stderr
    # The change happened on the job's target, on the volume that outlives the job container.
    assert (state / f"{CHANGE}-{TARGET}.txt").read_text() == f"changed by {CHANGE} in AWX job 4242\n"
    # The register's anchor and journal are on that volume too, not in the job container.
    assert list(state.glob("anchor-*.json")), sorted(p.name for p in state.iterdir())

    with open_store(pg_url) as store:
        report = verify_register(store, trusted_keys=load_public_keys([str(world.register_key)]))
        bodies = [json.loads(b) for _s, b in store.bodies()]
    assert report["ok"], report["problems"]
    assert [b["kind"] for b in bodies if b["kind"] in ("run_open", "gate_decision", "change_completed", "run_close", "checkpoint")] \
        == ["run_open", "gate_decision", "change_completed", "run_close", "checkpoint"]
    opened = next(b for b in bodies if b["kind"] == "run_open")
    assert opened["awx"] == {"job_id": 4242, "user_name": "ivan", "job_template": "prodgate go-live",
                             "launch_type": "manual", "inventory": "prodgate production"}
    assert opened["change"]["id"] == CHANGE
    decision = next(b for b in bodies if b["kind"] == "gate_decision")
    assert (decision["change_id"], decision["job_id"], decision["launcher"], decision["launcher_source"]) == (CHANGE, "4242", "ivan", "awx")
    assert decision["consumed"] is True and decision["pending_stages"] == []
    assert decision["checked_stages"] == decision["required_stages"] and decision["targets"] == [TARGET]
    assert {a["person"] for a in decision["approvals"]} == {"henry", "ivan", "jane", "sam"}

    # The same job again, as another AWX job: the approvals were consumed in the register, which
    # outlives the first job's container; the gate refuses before the change is made again.
    pdd2 = private_data_dir(tmp_path / "again", world, pg_url, ee_image, state, job_id=4243, user="ivan")
    events, process = run_like_awx(pdd2, tmp_path / "again" / "worker", tmp_path / "again" / "out")
    stdout = stdout_of(events)
    assert process.worker_rc == 2
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    assert stats["failures"] == {TARGET: 1}, stdout[-4000:]
    assert "approval gate refused the change" in stdout and f"change {CHANGE} already completed at" in stdout, stdout[-4000:]
    assert "approvals are single-use, sign a new one" in stdout
    assert "TASK [Make the change]" not in stdout
    assert (state / f"{CHANGE}-{TARGET}.txt").read_text() == f"changed by {CHANGE} in AWX job 4242\n"


def playbook_seconds(events):
    created = [datetime.fromisoformat(e["created"]) for e in events]
    return (max(created) - min(created)).total_seconds()


def test_four_execution_nodes_share_one_register(tmp_path, pg_url, ee_image):
    """Deliver 4: four jobs at once, as from four execution nodes (four workers, four EE
    containers), against one PostgreSQL register. Three changes, and a fourth job racing the first
    with the same change and the same approvals: no entry lost, one valid chain, each approval
    consumed exactly once across the jobs (one of the two racing jobs is refused)."""
    world = LabWorld(tmp_path / "world", register_db=pg_url)
    changes = ["CHG-AWX-0101", "CHG-AWX-0102", "CHG-AWX-0103"]
    for change in changes:
        world.change(change, "non_routine", "online_acceptance", targets=[TARGET])
        world.sign(change)
    state = tmp_path / "state"
    state.mkdir()
    jobs = [(5001, changes[0]), (5002, changes[1]), (5003, changes[2]), (5004, changes[0])]
    load = 30
    pdds = [private_data_dir(tmp_path / str(job), world, pg_url, ee_image, state, job_id=job, user="jane", change=change,
                             load_tasks=load) for job, change in jobs]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda item: run_like_awx(item[1], tmp_path / str(item[0][0]) / "worker",
                                                          tmp_path / str(item[0][0]) / "out"), zip(jobs, pdds)))
    batch = time.monotonic() - started
    outcome = {}
    for (job, change), (events, process) in zip(jobs, results):
        stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
        outcome[job] = ("refused" if stats["failures"] else "passed", process, events)
        if stats["failures"]:
            assert process.worker_rc == 2 and "approval gate refused the change" in stdout_of(events)
            assert "TASK [Make the change]" not in stdout_of(events)
        else:
            assert process.worker_rc == 0 and stats["changed"] == {TARGET: 3 + load}, stdout_of(events)[-4000:]
    assert outcome[5002][0] == outcome[5003][0] == "passed"
    assert sorted([outcome[5001][0], outcome[5004][0]]) == ["passed", "refused"], "exactly one racing job may pass"

    with open_store(pg_url) as store:
        report = verify_register(store, trusted_keys=load_public_keys([str(world.register_key)]))
        bodies = [json.loads(b) for _s, b in store.bodies()]
    assert report["ok"], report["problems"]
    assert report["entries"] == len(bodies)
    runs = {b["run"]: b for b in bodies if b.get("kind") == "run_open"}
    assert sorted(b["awx"]["job_id"] for b in runs.values()) == [5001, 5002, 5003, 5004]
    for run in runs:  # no entry lost: every job's run is whole
        kinds = [b["kind"] for b in bodies if b.get("run") == run]
        assert kinds[0] == "run_open" and "run_close" in kinds, kinds
        assert kinds.count("intent") == kinds.count("outcome")
        if runs[run]["awx"]["job_id"] in (5002, 5003):
            assert kinds.count("outcome") == 4 + load
    decisions = [b for b in bodies if b.get("kind") == "gate_decision"]
    consumed = [d for d in decisions if d.get("consumed")]
    assert sorted(d["change_id"] for d in consumed) == sorted(changes)
    nonces = [a["nonce"] for d in consumed for a in d["approvals"]]
    assert len(nonces) == len(set(nonces)) == sum(len(list(world.evidence_dir(c).iterdir())) for c in changes)

    # The figures of the closing note: what the register sustained, and what a job costs.
    stamps = sorted(datetime.fromisoformat(b["ts"]) for b in bodies if "ts" in b)
    span = max((stamps[-1] - stamps[0]).total_seconds(), 1.0)
    walls = [r[1].wall for r in outcome.values()]
    plays = [playbook_seconds(r[2]) for r in outcome.values()]
    print(f"\nscale-out: 4 jobs in {batch:.1f} s; {len(bodies)} register entries in {span:.0f} s "
          f"({len(bodies) / span:.1f} entries/s); per job: {sum(walls) / 4:.1f} s end to end, "
          f"{sum(plays) / 4:.1f} s of playbook, {sum(w - p for w, p in zip(walls, plays)) / 4:.1f} s of runner/EE overhead")


def test_a_job_whose_anchor_would_die_with_its_container_does_not_start(tmp_path, pg_url, ee_image):
    """Deliver 6 through AWX's path: a register credential without the anchor location (it would
    default to the job container's home directory) stops the job before any task, naming it."""
    world = LabWorld(tmp_path / "world", register_db=pg_url)
    world.change(CHANGE, "non_routine", "online_acceptance", targets=[TARGET])
    world.sign(CHANGE)
    state = tmp_path / "state"
    state.mkdir()
    pdd = private_data_dir(tmp_path, world, pg_url, ee_image, state, job_id=4301, user="ivan",
                           without=("PRODGATE_REGISTER_ANCHOR",))
    events, process = run_like_awx(pdd, tmp_path / "worker", tmp_path / "out")
    stdout = stdout_of(events)
    assert process.worker_rc != 0
    assert "this is an AWX job and register.anchor would die with the job's container" in stdout, stdout[-3000:]
    assert "TASK [" not in stdout
    assert not (state / f"{CHANGE}-{TARGET}.txt").exists()


def test_the_ee_holds_one_copy_of_the_core(ee_image):
    """The prodgate command in the EE runs the installed collection's core (one import name, one copy):
    `ansible-galaxy collection list` shows prodgate.deploy once, with its version and no warning."""
    script = ("ansible-galaxy collection list 2>&1; echo '#### prodgate'; prodgate --version; python3 -c "
              "'import ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.gate as g; print(g.__file__)'")
    proc = subprocess.run(["podman", "run", "--rm", "--network", "none", ee_image, "bash", "-c", script],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listing, rest = proc.stdout.split("#### prodgate\n", 1)
    version = yaml.safe_load((Path(REPO) / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    assert [line.split() for line in listing.splitlines() if line.startswith("prodgate.deploy ")] == [["prodgate.deploy", version]]
    assert "WARNING" not in listing, listing
    assert rest.splitlines() == [f"prodgate {version}",
                                 "/usr/share/ansible/collections/ansible_collections/prodgate/deploy/plugins/plugin_utils/governance/gate.py"]
