"""prodgate.deploy.release_verify, run by ansible-playbook the way the delivery playbooks run it
(playbooks/tasks/delivery_check_inputs.yml): no `prodgate` program on the PATH, the manifest kept
for later tasks, and a refusal that says what is wrong."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "plugin_utils" / "governance"))
from test_release_approved import make_bundle  # noqa: E402  pylint: disable=wrong-import-position

REPO = Path(__file__).resolve().parents[4]
VENV_BIN = REPO / ".venv" / "bin"
PLAY = """
- name: Delivery inputs as go_live.yml, upgrade.yml and rollback.yml check them
  hosts: app
  gather_facts: false
  vars_files:
    - {repo}/playbooks/vars/delivery.yml
  tasks:
    - name: Check the inputs and verify the bundle
      ansible.builtin.include_tasks: {repo}/playbooks/tasks/delivery_check_inputs.yml
    - name: Show the manifest each host kept
      ansible.builtin.debug:
        msg: "MANIFEST {{{{ delivery_manifest.system }}}} {{{{ delivery_manifest.version }}}} {{{{ delivery_manifest.data_scripts | length }}}}"
"""


def run_play(tmp_path, bundle, sha256, check=False):
    (tmp_path / "play.yml").write_text(PLAY.format(repo=REPO))
    (tmp_path / "hosts.yml").write_text("app:\n  hosts:\n    app1:\n    app2:\n  vars:\n    ansible_connection: local\n"
                                        f"    ansible_python_interpreter: {VENV_BIN / 'python'}\n")
    (tmp_path / "vars.json").write_text(json.dumps({"delivery_bundle": bundle, "delivery_bundle_sha256": sha256,
                                                    "prodgate_change_id": "CHG-7"}))
    # Only ansible-playbook's own directory on the PATH would hold `prodgate`: leave it out entirely.
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for tool in ("ansible-playbook", "python", "python3"):
        if not (bindir / tool).exists():
            (bindir / tool).symlink_to(VENV_BIN / tool)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{bindir}:/usr/bin:/bin")
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    argv = [str(bindir / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"), "-e", f"@{tmp_path / 'vars.json'}", str(tmp_path / "play.yml")]
    proc = subprocess.run(argv + (["--check"] if check else []), capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("check", [False, True])
def test_the_approved_bundle_passes_without_the_cli(tmp_path, check):
    bundle, digest = make_bundle(tmp_path)
    code, out = run_play(tmp_path, bundle, digest, check=check)
    assert code == 0, out
    assert out.count("MANIFEST svc 2.0.1 0") == 2
    assert "changed=0" in out and "changed=1" not in out


def test_another_bundle_is_refused_naming_both_digests(tmp_path):
    _approved, approved_digest = make_bundle(tmp_path, "2.0.1")
    other, other_digest = make_bundle(tmp_path, "2.0.2")
    code, out = run_play(tmp_path, other, approved_digest)
    assert code != 0
    assert (f"release bundle refused: bundle {other} (svc 2.0.2) is not the approved release: its sha256 is {other_digest}, "
            f"the approvals sign {approved_digest}") in out
    assert "digest ?" not in out and "MANIFEST" not in out


def test_a_missing_bundle_and_a_malformed_digest_say_so(tmp_path):
    code, out = run_play(tmp_path, str(tmp_path / "missing.tar.gz"), "0" * 64)
    assert code != 0 and f"release bundle refused: bundle {tmp_path / 'missing.tar.gz'} does not exist" in out
    bundle, _digest = make_bundle(tmp_path)
    code, out = run_play(tmp_path, bundle, "not-a-digest")
    assert code != 0 and "the approved digest 'not-a-digest' is not a sha256 (64 hexadecimal digits)" in out


def test_the_plugin_needs_both_options(tmp_path):
    bundle, _digest = make_bundle(tmp_path)
    (tmp_path / "bare.yml").write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                                       f"    - prodgate.deploy.release_verify:\n        bundle: {bundle}\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(tmp_path / "bare.yml")],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300, check=False)
    assert proc.returncode != 0 and "missing required arguments: sha256" in proc.stdout + proc.stderr
