"""The lab comes back after the machine's session was torn down under it.

When the processes of a lab container are killed without podman noticing (conmon and the container's
systemd gone, as happens when a login session or CI job ends), podman still lists the container as
running, but every `podman exec` fails with "cannot exec in a stopped container". playbooks/lab.yml must
notice that and give the host a working container again, instead of reporting every host unreachable.
The new container has new SSH host keys: the lab pins them in its known_hosts, replacing the old entry,
and the host answers over SSH again. Uses backup1 only (the delivery test uses lb1, app1, app2 and db1).
"""
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
HOST = "backup1"
CONTAINER = f"prodgate-lab-{HOST}"
ADDRESS = "10.89.77.31"
KNOWN_HOSTS = Path(os.environ.get("PRODGATE_LAB_SSH", Path.home() / ".local/state/prodgate/lab-ssh")) / "known_hosts"


def _lab_up():
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "playbooks/lab.yml", "-e", "lab_state=started",
                           "--limit", HOST], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _podman(*args):
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=60, check=False)


def _host_key():
    return _podman("exec", CONTAINER, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]


def _pinned():
    return [line.split()[1:3] for line in KNOWN_HOSTS.read_text(encoding="utf-8").splitlines()
            if line.split()[:1] == [ADDRESS]]


def test_lab_replaces_a_container_whose_processes_were_killed():
    rc, out = _lab_up()
    assert rc == 0, out[-3000:]
    old_key = _host_key()
    assert _pinned() == [old_key]
    pids = _podman("inspect", CONTAINER, "--format", "{{.State.ConmonPid}} {{.State.Pid}}").stdout.split()
    assert len(pids) == 2 and all(p.isdigit() and p != "0" for p in pids), pids
    for pid in pids:  # conmon first, so that nobody records the container's exit
        subprocess.run(["kill", "-9", pid], check=True)
    time.sleep(1)
    assert _podman("inspect", CONTAINER, "--format", "{{.State.Status}}").stdout.strip() == "running"
    stale = _podman("exec", CONTAINER, "/bin/true")
    assert stale.returncode != 0, "the container should be unusable after its processes were killed"

    rc, out = _lab_up()
    assert rc == 0, f"lab.yml did not recover the stale container:\n{out[-3000:]}"
    removal = out.split("TASK [Remove a stale container", 1)[-1].split("TASK [", 1)[0]
    assert f"changed: [{HOST}" in removal, out[-3000:]
    alive = _podman("exec", CONTAINER, "systemctl", "is-system-running", "--wait")
    assert alive.stdout.strip() in ("running", "degraded"), alive.stdout + alive.stderr
    # a container of its own, with host keys of its own: the new key replaced the old one in known_hosts
    new_key = _host_key()
    assert new_key != old_key and _pinned() == [new_key]
    assert f"ok: [{HOST}]" in out.split("TASK [Log in as the operations user and become root", 1)[-1], out[-3000:]
