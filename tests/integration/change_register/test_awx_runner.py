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
from pathlib import Path

import yaml

from register_helpers import BIN, REPO
from prodgate.register_chain import load_public_keys
from prodgate.register_store import open_store
from prodgate.register_writer import verify_register

sys.path.insert(0, str(Path(REPO) / "tests" / "integration"))
from approval_world import LabWorld  # noqa: E402  pylint: disable=wrong-import-position

CHANGE = "CHG-AWX-0001"
TARGET = "ee-local"
PLAYBOOK = Path(REPO) / "tests" / "integration" / "playbooks" / "awx_change.yml"
EE_COLLECTION = "/usr/share/ansible/collections/ansible_collections/prodgate/deploy"


def _secret(path, data):
    path.write_bytes(data)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def private_data_dir(root, world, pg_url, image, state, job_id, user):
    """A private data dir as AWX builds it for one job of the `prodgate` job templates."""
    pdd = root / "pdd"
    for sub in ("project", "inventory", "env", "credentials"):
        (pdd / sub).mkdir(parents=True)
    shutil.copy(PLAYBOOK, pdd / "project" / "awx_change.yml")
    (pdd / "inventory" / "hosts").write_text(
        f"[ee_targets]\n{TARGET} ansible_connection=local ansible_python_interpreter=/opt/ee/bin/python3\n")
    # The credentials' injector files (awx/objects.yml: prodgate governance, prodgate change register).
    _secret(pdd / "credentials" / "policy.yml", world.policy_path.read_bytes())
    _secret(pdd / "credentials" / "governance-root.yml", world.root_path.read_bytes())
    _secret(pdd / "credentials" / "register-signing.key", world.register_key.read_bytes())
    shutil.copytree(world.evidence_dir(CHANGE), pdd / "evidence" / CHANGE)
    envvars = {
        "PRODGATE_POLICY": "/runner/credentials/policy.yml",
        "PRODGATE_POLICY_ROOT": "/runner/credentials/governance-root.yml",
        "PRODGATE_TEST_CLOCK_ENVIRONMENTS": "",
        "PRODGATE_REGISTER_DB": pg_url,
        "PRODGATE_REGISTER_SIGNING_KEY": "/runner/credentials/register-signing.key",
        "PRODGATE_REGISTER_ANCHOR": "/var/lib/prodgate/anchor-{register_id}.json",
        "PRODGATE_REGISTER_JOURNAL_DIR": "/var/lib/prodgate/journal",
        "JOB_ID": str(job_id),
    }
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    # What AWX puts in the job's extra vars: its own identity, the survey's two answers, and the
    # change's other fields (the job template's variables).
    run_vars = yaml.safe_load(world.vars_file(CHANGE).read_text(encoding="utf-8"))
    run_vars.update({"prodgate_evidence": f"/runner/evidence/{CHANGE}", "awx_job_id": job_id, "awx_user_name": user,
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
    opened = [b for b in bodies if b.get("kind") == "run_open"]
    assert len(opened) == 1
    assert opened[0]["awx"]["job_id"] == "4242" or opened[0]["awx"]["job_id"] == 4242
    assert opened[0]["awx"]["user_name"] == "ivan"
    assert opened[0]["change"]["id"] == CHANGE
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
