"""Helpers for the change register's integration tests (playbook runs, the CLI, waiting)."""
import os
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.join(REPO, ".venv", "bin")


def write_inventory(path, hosts, environment="staging"):
    """Local hosts of a test. Their environment is `staging` (not production) unless a test says otherwise: a
    production run needs a valid change registration (issue 11), which the tests of the register's mechanics
    do not all carry."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("all:\n  hosts:\n")
        for h in hosts:
            fh.write(f"    {h}: {{ansible_connection: local, ansible_python_interpreter: {BIN}/python}}\n")
        if environment:
            fh.write(f"  vars:\n    prodgate_environment: {environment}\n")
    return str(path)


def run_playbook(env, inventory, playbook, *extra, check=False, timeout=300):
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), str(playbook), *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"ansible-playbook failed rc={proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def prodgate(env, *args):
    """Run the `prodgate` CLI as a user would; returns the CompletedProcess."""
    return subprocess.run([os.path.join(BIN, "prodgate"), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def wait_for(predicate, timeout=60, interval=0.2):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached within %ss" % timeout)
