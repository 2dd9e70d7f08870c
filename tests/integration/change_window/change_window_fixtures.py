"""Signed policies and approval envelopes for the change_window tests (real keys, real signatures)."""
import datetime as dt
import json
import os
import subprocess

import yaml

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import approvals, dsse, policy
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy_schema

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(REPO, ".venv", "bin")
SH = dt.timezone(dt.timedelta(hours=8))
PEOPLE = {"gov": [], "hugo": ["it_head"], "carol": ["coo"], "pat": ["president_office"], "rita": ["risk_compliance"]}


class Signers:
    def __init__(self):
        self.keys = {name: dsse.generate_private_key() for name in PEOPLE}

    def public(self, name):
        return dsse.public_key_hex(self.keys[name].public_key())


def write_policy(path, signers, windows, calendar=None, lead_time=None, emergency=None, sign=True):
    doc = {
        "schema": policy_schema.POLICY_SCHEMA, "version": 1, "expires": "2099-01-01T00:00:00+08:00",
        "governance": {"threshold": 1, "keys": [{"holder": "gov", "public_key": signers.public("gov")}]},
        "systems": [
            {"id": "ta-core", "name": "TA core", "category": "core_business", "type": "custom",
             "owner_department": "operations", "environments": ["production", "staging"]},
            {"id": "oa", "name": "OA", "category": "public_services", "type": "product",
             "owner_department": "admin", "environments": ["production"]},
        ],
        "people": [{"id": name, "name": name.title(), "roles": roles, "keys": [{"public_key": signers.public(name)}]}
                   for name, roles in PEOPLE.items() if roles],
        "freeze_windows": windows,
        "calendar": calendar if calendar is not None else {},
    }
    if lead_time is not None:
        doc["lead_time_working_days"] = lead_time
    if emergency is not None:
        doc["emergency"] = emergency
    if sign:
        policy.sign_document(doc, signers.keys["gov"])
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(policy.dump_document(doc))
    return path


# staging: the environment where the tests' controller allows a test clock (never production).
BINDING = {"change_id": "CHG-7", "system": "ta-core", "environment": "staging", "change_type": "version_update",
           "version": "3.2.1", "artifacts": ["sha256:" + "ab" * 32], "targets": ["app1", "app2", "app3", "app4"]}


def envelope(signers, stage, person, role, issued_at, not_before=None, not_after=None, **extra):
    statement = approvals.make_statement(BINDING, stage, role, person,
                                         not_before or issued_at, not_after or issued_at + dt.timedelta(days=30),
                                         issued_at=issued_at, **extra)
    return approvals.sign_statement(statement, signers.keys[person])


def write_evidence(folder, envelopes):
    os.makedirs(folder, exist_ok=True)
    for i, env in enumerate(envelopes):
        with open(os.path.join(folder, f"{i:02d}.json"), "w", encoding="utf-8") as handle:
            json.dump(env, handle)
    return folder


def write_controller(workdir, policy_path, signers, test_clock_environments=("staging",), name="controller.yml"):
    """The controller trust settings of a test (issue 11): the policy, its pinned governance root, the
    register, and the environments where the test clock (`now`) is honoured."""
    root = dump(os.path.join(workdir, "governance-root.yml"),
                {"threshold": 1, "keys": [{"holder": "gov", "public_key": signers.public("gov")}]})
    return dump(os.path.join(workdir, name), {
        "policy": policy_path, "policy_root": root,
        "register": {"db": os.path.join(workdir, "register.db")},
        "test_clock_environments": list(test_clock_environments)})


def run_playbook(workdir, playbook, inventory, extra_env=None):
    # A config of our own in the work folder: the test must not depend on callbacks or
    # inventories that the repository's ansible.cfg enables for other purposes.
    with open(os.path.join(workdir, "ansible.cfg"), "w", encoding="utf-8") as handle:
        handle.write("[defaults]\nretry_files_enabled = False\nhost_key_checking = False\n"
                     "stdout_callback = ansible.builtin.default\ninterpreter_python = auto_silent\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_CONFIG": os.path.join(workdir, "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": os.path.join(workdir, ".tmp"),
                "PATH": BIN + os.pathsep + env.get("PATH", "")})
    env.update(extra_env or {})
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, playbook],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False)


def dump(path, data):
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path
