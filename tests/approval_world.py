"""A throw-away world for approval tests and the bench: keys generated at test time (never
committed), a signed policy, and helpers that sign the approvals a change needs.

Used by tests/unit/plugins/plugin_utils/test_approvals*.py, tests/integration/test_approval_gate.py
and bench/gate_bench.py.
"""
import copy
import json
import os
from datetime import datetime, timedelta, timezone

import yaml

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import approvals, dsse, policy as policy_mod
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy_schema
from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import real_user

CST = timezone(timedelta(hours=8))

# person id -> roles; keys are generated for everyone.
PEOPLE = {
    "henry": ["it_head"],
    "carol": ["coo"],
    "cody": ["coo"],
    "rita": ["risk_compliance"],
    "bella": ["business_owner"],
    "pam": ["president_office"],
    "rev1": ["review_panel"],
    "rev2": ["review_panel"],
    "rev3": ["review_panel"],
    "paula": ["it_pm"],
    "ivan": ["it_ops"],
    "jane": ["it_ops"],
    "ken": ["it_ops"],
    "sam": ["ops_supervisor"],
    "dual": ["it_ops", "risk_compliance"],      # implementer who could also approve
    "olga": ["risk_compliance", "business_owner"],  # one person, two approver roles
    "rex": ["risk_compliance"],                 # key revoked in the policy
}
REVOKED = {"rex"}
LOGINS = {"ivan": ["ivan.w"], "jane": ["jane.l"]}

SYSTEMS = [
    {"id": "ta-core", "name": "Trustee accounting core", "category": "core_business", "type": "custom",
     "owner_department": "fund_operations", "environments": ["production", "staging"]},
    {"id": "crm", "name": "Customer service desk", "category": "customer_service", "type": "product",
     "owner_department": "customer_service", "environments": ["production", "staging"]},
    {"id": "wiki", "name": "Operations wiki", "category": "it_management", "type": "product",
     "owner_department": "it", "environments": ["production"]},
]

# Who signs which (stage, role) in a normal passing change.
SIGNERS = {
    ("plan_submission", "it_head"): ["henry"],
    ("coo_approval", "coo"): ["carol"],
    ("internal_review", "review_panel"): ["rev1", "rev2"],
    ("trial_run", "it_pm"): ["paula"],
    ("trial_run", "business_owner"): ["bella"],
    ("go_live", "business_owner"): ["bella"],
    ("go_live", "risk_compliance"): ["rita"],
    ("go_live", "coo"): ["carol"],
    ("go_live", "president_office"): ["pam"],
    ("change_approval", "it_head"): ["henry"],
    ("implementer_ack", "it_ops"): ["ivan", "jane"],
    ("supervisor_ack", "ops_supervisor"): ["sam"],
    ("emergency_override", "coo"): ["carol"],
}

ARTIFACT = "5" * 64


def now():
    return datetime.now(CST).replace(microsecond=0)


class World:
    """Keys, a signed policy file and an approval factory under ``root`` (a tmp folder)."""

    def __init__(self, root, overrides=None, governance_threshold=2, sign=True, hosts=("app1", "app2"),  # pylint: disable=too-many-arguments
                 launcher="ivan"):
        self.root = str(root)
        # The launcher is the real user running ansible-playbook (issue 11): map it to ``launcher``.
        self.launcher = launcher
        os.makedirs(self.root, exist_ok=True)
        self.keys = {pid: dsse.generate_private_key() for pid in PEOPLE}
        self.gov_keys = [dsse.generate_private_key() for dummy in range(3)]
        self.hosts = list(hosts)
        self.now = now()
        self.doc = self.policy_document(governance_threshold)
        if overrides:
            self.doc.update(copy.deepcopy(overrides))
        self.policy_path = os.path.join(self.root, "policy.yml")
        if sign:
            self.sign_policy()
        else:
            self.write_policy()

    def policy_document(self, threshold):
        people = []
        for pid, roles in PEOPLE.items():
            entry = {"id": pid, "name": pid.title(), "roles": list(roles),
                     "keys": [{"public_key": dsse.public_key_hex(self.keys[pid].public_key())}]}
            if pid in REVOKED:
                entry["keys"][0]["revoked"] = True
            logins = list(LOGINS.get(pid, []))
            if pid == self.launcher:
                logins.append(real_user())
            if logins:
                entry["logins"] = logins
            people.append(entry)
        return {
            "schema": policy_schema.POLICY_SCHEMA,
            "version": 1,
            "expires": (self.now + timedelta(days=90)).isoformat(),
            "governance": {"threshold": threshold, "keys": [
                {"holder": f"gov{i + 1}", "public_key": dsse.public_key_hex(k.public_key())} for i, k in enumerate(self.gov_keys)]},
            "systems": copy.deepcopy(SYSTEMS),
            "people": people,
            "roles": {},
            "lead_time_working_days": 3,
            "freeze_windows": [],
        }

    def write_policy(self, doc=None):
        with open(self.policy_path, "w", encoding="utf-8") as handle:
            handle.write(policy_mod.dump_document(doc or self.doc))
        return self.policy_path

    def sign_policy(self, signers=None):
        doc = self.doc
        doc.pop("signatures", None)
        for key in signers if signers is not None else self.gov_keys[:2]:
            policy_mod.sign_document(doc, key)
        return self.write_policy(doc)

    def policy(self, at=None):
        return policy_mod.load_policy(self.policy_path, now=at)

    def binding(self, **over):
        b = {"change_id": "CHG-1001", "system": "ta-core", "environment": "production",
             "change_type": "version_update", "version": "3.2.1", "artifacts": [ARTIFACT],
             "targets": list(self.hosts), "launcher": "ivan"}
        b.update(over)
        return b

    def approve(self, stage, role, person, binding=None, key=None, offset_minutes=0, **kw):
        """One signed envelope; issued ``offset_minutes`` after a base time two days ago."""
        binding = binding or self.binding()
        issued = self.now - timedelta(days=2) + timedelta(minutes=offset_minutes)
        kw.setdefault("not_before", self.now - timedelta(days=3))
        kw.setdefault("not_after", self.now + timedelta(days=2))
        kw.setdefault("issued_at", issued)
        if stage == "plan_submission":
            kw.setdefault("planned_start", self.now + timedelta(hours=2))
        statement = approvals.make_statement(binding, stage, role, person, **kw)
        return approvals.sign_statement(statement, key or self.keys[person])

    def evidence(self, binding=None, skip=(), replace=None, emergency=False, without=()):
        """Envelopes for every required stage of ``binding`` (signers from SIGNERS).

        ``skip``: (stage, role, person) triples to leave out; ``replace``: {(stage, role): [people]};
        ``without``: stages left unsigned (e.g. ``("trial_run", "go_live")`` for a trial run).
        """
        binding = binding or self.binding()
        pol = self.policy()
        stages = pol.required_stages(binding["system"], binding["change_type"], binding["environment"], emergency=emergency)
        signers = dict(SIGNERS)
        signers.update(replace or {})
        out = []
        for index, stage in enumerate(stages):
            if stage in without:
                continue
            roles = pol.stage_roles(stage)
            for role in roles:
                for person in signers.get((stage, role), []):
                    if (stage, role, person) in skip:
                        continue
                    extra = {}
                    if stage == "emergency_override":
                        extra = {"reason": "payment outage hot fix", "not_before": self.now - timedelta(hours=1),
                                 "not_after": self.now + timedelta(hours=4), "issued_at": self.now - timedelta(hours=1)}
                    out.append(self.approve(stage, role, person, binding, offset_minutes=10 * index, **extra))
        return out

    def write_evidence(self, envelopes, name="evidence"):
        folder = os.path.join(self.root, name)
        os.makedirs(folder, exist_ok=True)
        for i, env in enumerate(envelopes):
            with open(os.path.join(folder, f"{i:03d}.json"), "w", encoding="utf-8") as handle:
                json.dump(env, handle)
        return folder

    def write_key(self, person, passphrase=None):
        path = os.path.join(self.root, f"{person}.key")
        if not os.path.exists(path):
            dsse.write_private_key(path, self.keys[person], passphrase)
        return path

    def write_yaml(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle)
        return path

    # -- the controller's trust settings (issue 11) ---------------------------------------------------
    def write_root(self, keys=None, threshold=None):
        """The pinned governance root file: the governance keys and threshold of the policy."""
        gov = self.doc["governance"]
        root = {"threshold": threshold or gov["threshold"], "keys": keys if keys is not None else gov["keys"]}
        return self.write_yaml("governance-root.yml", {"governance": root})

    def controller(self, register_db=None, pinned=True, test_clock_environments=(), name="controller.yml", **extra):
        """A controller.yml for this world (tests point PRODGATE_CONTROLLER_CONFIG at it)."""
        register_db = register_db or os.path.join(self.root, "register.db")
        data = {"policy": self.policy_path,
                "register": {"db": str(register_db), "signing_key": os.path.join(self.root, "register-signing.key"),
                             "anchor": os.path.join(self.root, "anchor-{register_id}.json"),
                             "journal_dir": os.path.join(self.root, "journal")},
                "test_clock_environments": list(test_clock_environments)}
        if pinned:
            data["policy_root"] = self.write_root()
        data.update(extra)
        return self.write_yaml(name, data)
