"""The lab is reached the way production is (issue 15): SSH as the unprivileged `ops`, become for root,
host keys pinned in the lab's own known_hosts, key logins only.

Uses backup1 only (the delivery test uses lb1, app1, app2 and db1). Each check that must be refused
runs with a control path directory of its own: an SSH connection kept open (ControlPersist) by an
earlier command would answer in its place without checking the host key again.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
HOST = "backup1"
ADDRESS = "10.89.77.31"
LAB_SSH = Path(os.environ.get("PRODGATE_LAB_SSH", Path.home() / ".local/state/prodgate/lab-ssh"))


def _env(tmp_path, **extra):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal")  # prints each command's output
    env.update(extra)
    return env


def _ansible(env, *args):
    proc = subprocess.run([str(BIN / "ansible"), HOST, "-m", "ansible.builtin.command", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module", name="lab")
def fixture_lab(tmp_path_factory):
    env = _env(tmp_path_factory.mktemp("lab"))
    proc = subprocess.run([str(BIN / "ansible-playbook"), "playbooks/lab.yml", "-e", "lab_state=started", "--limit", HOST],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"the lab did not come up (playbooks/lab.yml --limit {HOST}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return env


def test_tasks_run_over_ssh_as_ops_and_become_root(lab):
    rc, out = _ansible(lab, "-a", "printenv SSH_CONNECTION", "-e", "ansible_become=false")
    assert rc == 0, out
    assert f" {ADDRESS} 22" in out, out  # an SSH session to the host's lab address, not podman exec
    rc, out = _ansible(lab, "-a", "id -un", "-e", "ansible_become=false")
    assert rc == 0 and out.strip().endswith("ops"), out
    rc, out = _ansible(lab, "-a", "id -un")
    assert rc == 0 and out.strip().endswith("root"), out


def test_a_host_key_other_than_the_pinned_one_is_refused(lab, tmp_path):
    state = tmp_path / "lab-ssh"
    state.mkdir(mode=0o700)
    for name in ("id_ed25519", "id_ed25519.pub"):
        shutil.copy2(LAB_SSH / name, state / name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "impostor")], check=True)
    impostor = (tmp_path / "impostor.pub").read_text(encoding="utf-8").split()[:2]
    (state / "known_hosts").write_text(f"{ADDRESS} {' '.join(impostor)}\n", encoding="utf-8")
    env = dict(lab, PRODGATE_LAB_SSH=str(state), ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"))
    rc, out = _ansible(env, "-a", "true")
    assert rc != 0 and "UNREACHABLE" in out and "Host key verification failed" in out, out
    # nor is an address the lab never pinned trusted on first use
    (state / "known_hosts").write_text("", encoding="utf-8")
    rc, out = _ansible(env, "-a", "true")
    assert rc != 0 and "Host key verification failed" in out, out


def test_only_the_labs_key_logs_in(lab):
    proc = subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", "-o", "ControlPath=none",
                           "-o", f"UserKnownHostsFile={LAB_SSH / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
                           f"ops@{ADDRESS}", "true"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "Permission denied (publickey)" in proc.stderr, proc.stderr
