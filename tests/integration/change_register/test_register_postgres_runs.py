"""Playbooks writing to a real PostgreSQL register: two at once lose nothing, and a run through
AWX's engine (ansible_runner.run with AWX-style extra vars) carries its AWX identity."""
import json
import os
import subprocess

import ansible_runner

from register_helpers import BIN, REPO, prodgate, write_inventory
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import load_public_keys
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import verify_register

PB = """
- hosts: all
  gather_facts: false
  tasks:
{tasks}
"""


def _tasks(n, tag):
    return "".join(f"    - name: {tag} change {i}\n      ansible.builtin.debug:\n        msg: {i}\n      changed_when: true\n"
                   for i in range(n))


def test_two_playbooks_writing_concurrently_lose_nothing(tmp_path, reg_env, pg_url):
    env = dict(reg_env, PRODGATE_REGISTER_DB=pg_url)
    procs = []
    for tag in ("alpha", "beta"):
        inv = write_inventory(tmp_path / f"{tag}.yml", [f"{tag}{i}" for i in range(6)])
        pb = tmp_path / f"{tag}-pb.yml"
        pb.write_text(PB.format(tasks=_tasks(8, tag)))
        procs.append(subprocess.Popen([os.path.join(BIN, "ansible-playbook"), "-i", inv, str(pb), "-f", "6",
                                       "-e", f"prodgate_change_id=CHG-{tag}", "-e", "prodgate_change_type=routine"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out[-2000:] + err[-2000:]
    with open_store(pg_url) as store:
        keys = load_public_keys([env["PRODGATE_REGISTER_SIGNING_KEY"]])
        report = verify_register(store, trusted_keys=keys)
        bodies = [json.loads(b) for _s, b in store.bodies()]
    assert report["ok"], report["problems"]
    assert report["checkpoints"] == 2 and report["entries"] == len(bodies)
    for tag in ("alpha", "beta"):
        run = {b["run"] for b in bodies if b.get("kind") == "run_open" and b["change"]["id"] == f"CHG-{tag}"}
        assert len(run) == 1
        mine = [b for b in bodies if b.get("run") in run]
        assert len([b for b in mine if b["kind"] == "intent"]) == 6 * 8
        assert len([b for b in mine if b["kind"] == "outcome" and b["changed"]]) == 6 * 8
        assert [b["kind"] for b in mine if b["kind"] in ("run_open", "run_close", "checkpoint")] == \
            ["run_open", "run_close", "checkpoint"]
    # interleaved: both runs were really writing at the same time
    runs_in_order = [b["run"] for b in bodies if b.get("kind") == "outcome"]
    switches = sum(1 for a, b in zip(runs_in_order, runs_in_order[1:]) if a != b)
    assert switches >= 1
    verify = prodgate(env, "register", "verify", "--db", pg_url)
    assert verify.returncode == 0 and "verify: OK" in verify.stdout


def test_awx_engine_run_is_recorded_with_its_awx_identity(tmp_path, reg_env, pg_url, monkeypatch):
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ.get("PATH", ""))
    for key in [k for k in os.environ if k.startswith(("ANSIBLE_", "PRODGATE_REGISTER_"))]:
        monkeypatch.delenv(key)
    inv = write_inventory(tmp_path / "hosts.yml", ["awxhost1", "awxhost2"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "site.yml").write_text(PB.format(tasks=_tasks(2, "awx")))
    envvars = {k: v for k, v in reg_env.items() if k.startswith(("ANSIBLE_", "PRODGATE_REGISTER_", "PRODGATE_CONTROLLER_"))}
    envvars.update({"PRODGATE_REGISTER_DB": pg_url, "JOB_ID": "4242", "AWX_HOST": "https://awx.example.internal",
                    "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections")})
    extravars = {"awx_job_id": 4242, "awx_user_name": "alice", "awx_job_launch_type": "manual",
                 "awx_job_template_name": "deploy-ta", "awx_project_revision": "0123abcd" * 5,
                 "tower_job_id": 4242, "tower_user_name": "alice",
                 "prodgate_change_id": "CHG-AWX-1", "prodgate_change_type": "version_update", "prodgate_system": "ta"}
    (tmp_path / "runner").mkdir()
    result = ansible_runner.run(private_data_dir=str(tmp_path / "runner"), project_dir=str(project), playbook="site.yml",
                                inventory=inv, extravars=extravars, envvars=envvars, quiet=True)
    stdout = result.stdout.read() if result.stdout else ""
    assert result.rc == 0 and result.status == "successful", stdout[-3000:]
    # awx_display (the runner's stdout callback) and ours both ran: runner has its job events too
    assert any(e.get("event") == "runner_on_ok" for e in result.events)
    with open_store(pg_url) as store:
        bodies = [json.loads(b) for _s, b in store.bodies()]
        report = verify_register(store)
    assert report["ok"]
    opened = [b for b in bodies if b["kind"] == "run_open"]
    assert len(opened) == 1
    awx = opened[0]["awx"]
    assert (awx["job_id"], awx["user_name"], awx["launch_type"], awx["job_template"], awx["host"]) == \
        (4242, "alice", "manual", "deploy-ta", "https://awx.example.internal")
    assert opened[0]["project_revision"] == "0123abcd" * 5
    assert len([b for b in bodies if b["kind"] == "outcome" and b["changed"]]) == 4
    runs = json.loads(prodgate(reg_env, "register", "runs", "--db", pg_url, "--json").stdout)
    assert runs[0]["awx_job_id"] == 4242 and runs[0]["awx_user"] == "alice" and runs[0]["change_id"] == "CHG-AWX-1"
