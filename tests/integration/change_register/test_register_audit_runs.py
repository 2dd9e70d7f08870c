"""Issue 11, Deliver 7 (reproduction R9's register side): a production run that changed hosts without a
gate decision is reported UNGATED by `prodgate register audit` and on the change form; a gated run
is not; a run without a change registration in production is refused before any task."""
import json

from register_helpers import BIN, prodgate, run_playbook, write_inventory

PLAYBOOK = """---
- name: A change that skips the gate
  hosts: all
  gather_facts: false
  tasks:
    - name: Change something for real
      ansible.builtin.copy:
        content: "changed by {{{{ inventory_hostname }}}}\\n"
        dest: "{out}/{{{{ inventory_hostname }}}}.txt"
        mode: "0644"
"""


def test_a_production_change_without_the_gate_is_reported_ungated(tmp_path, reg_env):
    out = tmp_path / "out"
    out.mkdir()
    inv = write_inventory(tmp_path / "hosts.yml", ["web1"])
    book = tmp_path / "ungated.yml"
    book.write_text(PLAYBOOK.format(out=out))
    proc = run_playbook(reg_env, inv, book, "-e", "prodgate_change_id=CHG-UNGATED", "-e", "prodgate_change_type=routine",
                        "-e", "prodgate_system=ta-core", "-e", "prodgate_environment=production")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "web1.txt").exists()
    # the same change in staging (not production) is not an ungated production change
    proc = run_playbook(reg_env, inv, book, "-e", "prodgate_change_id=CHG-STAGING", "-e", "prodgate_change_type=routine",
                        "-e", "prodgate_system=ta-core", "-e", "prodgate_environment=staging")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    audit = prodgate(reg_env, "register", "audit", "--json")
    assert audit.returncode == 1, audit.stdout + audit.stderr
    found = json.loads(audit.stdout)
    assert [(u["status"], u["change_id"], u["first_change"]["host"]) for u in found["ungated"]] == \
        [("UNGATED", "CHG-UNGATED", "web1")]
    table = prodgate(reg_env, "register", "audit")
    assert table.returncode == 1 and "UNGATED" in table.stdout and "CHG-UNGATED" in table.stdout, table.stdout
    form = prodgate(reg_env, "register", "form", "CHG-UNGATED", "--json")
    assert form.returncode == 0, form.stdout + form.stderr
    assert json.loads(form.stdout)["gate"]["status"] == "UNGATED"


def test_a_production_run_without_a_change_registration_is_refused_before_any_task(tmp_path, reg_env):
    out = tmp_path / "out"
    out.mkdir()
    inv = write_inventory(tmp_path / "hosts.yml", ["web1"])
    book = tmp_path / "unregistered.yml"
    book.write_text(PLAYBOOK.format(out=out))
    proc = run_playbook(reg_env, inv, book, "-e", "prodgate_environment=production")
    assert proc.returncode == 69, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no valid change registration" in proc.stdout + proc.stderr
    assert not (out / "web1.txt").exists()


def test_a_change_id_set_in_inventory_reaches_the_register(tmp_path, reg_env):
    """Reproduction R10: the callback re-parsed extra vars only, so an inventory change id reached the
    gate but not the register."""
    out = tmp_path / "out"
    out.mkdir()
    inv = tmp_path / "hosts.yml"
    inv.write_text(f"all:\n  hosts:\n    web1: {{ansible_connection: local, ansible_python_interpreter: {BIN}/python}}\n  vars:\n"
                   "    prodgate_change_id: CHG-INVENTORY\n    prodgate_change_type: routine\n"
                   "    prodgate_system: ta-core\n    prodgate_environment: staging\n")
    book = tmp_path / "inv.yml"
    book.write_text(PLAYBOOK.format(out=out))
    proc = run_playbook(reg_env, str(inv), book)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = json.loads(prodgate(reg_env, "register", "runs", "--json").stdout)
    assert [r.get("change_id") for r in runs] == ["CHG-INVENTORY"], runs
