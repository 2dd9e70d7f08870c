"""The lab's approval world: ONE place that creates what production gets from its governance key
holders and its controller's administrator, so that the shipped playbooks run on the podman lab
exactly as they run in production, gates on (issue 11, Deliver 4):

- an Ed25519 key per demo person and per governance key holder (generated, never committed);
- a signed lab policy (`policy.yml`, signed by gov1 and gov2, threshold 2) and the pinned
  governance root (`governance-root.yml`);
- the change register's signing key and the controller trust settings file `controller.yml`
  (issue 11 trust contract: root-owned, not writable by group or others; its path goes in
  PRODGATE_CONTROLLER_CONFIG), naming the policy, the root and the register;
- per change: the change description people sign (`changes/<id>.yml`, what `prodgate approve
  --change` reads), the run variables that name the change (`changes/<id>.vars.yml`: only the
  change, never a trust setting) and the signed approvals of the stages it needs
  (`evidence/<id>/`).

The lab policy lets a lab run pass now with the real clock: the freeze windows cover trading
(core_business) systems only and none of the lab's systems is one; the Art. 17 lead time is 0 in
this lab policy only. No test clock is used anywhere.

Used by tests/integration/test_delivery_lab.py, test_rehearsal.py, test_gated_playbooks.py,
bench/upgrade_bench.py and scripts/demo.sh, which calls the command line:

    python3 tests/integration/lab_world.py init DIR [--break-glass]
    python3 tests/integration/lab_world.py change DIR ID --type T --system S [--version V]
        [--artifact SHA256] [--target HOST ...] [--environment production]
    python3 tests/integration/lab_world.py sign DIR ID [--stage S ...] [--without S ...]
        [--emergency] [--break-glass] [--retrospective]

`init` prints the file names as JSON; `sign` prints one line per signed approval.
"""
import argparse
import json
import os
import stat
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import approvals, dsse, policy as policy_mod  # noqa: E402  (the .venv's python)
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy_schema  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import generate_key as generate_register_key  # noqa: E402

CST = timezone(timedelta(hours=8))
BREAK_GLASS_STAGE = "retrospective_approval"

# person id -> (display name, roles, logins)
PEOPLE = {
    "henry": ("Henry (IT head)", ["it_head"], []),
    "carol": ("Carol (COO)", ["coo"], []),
    "paul": ("Paul (IT project manager)", ["it_pm"], []),
    "bella": ("Bella (business owner)", ["business_owner"], []),
    "rita": ("Rita (risk & compliance)", ["risk_compliance"], []),
    "pam": ("Pam (president's office)", ["president_office"], []),
    # LAB ONLY: the lab's runs are launched by root on this controller; the launcher (real uid,
    # Art. 27) must be an implementer, so root is ivan's login here. In production every
    # implementer launches under their own login.
    "ivan": ("Ivan (operations)", ["it_ops"], ["ivan", "root"]),
    "jane": ("Jane (operations)", ["it_ops"], ["jane"]),
    "sam": ("Sam (operations supervisor)", ["ops_supervisor"], []),
}
GOVERNANCE = ("gov1", "gov2")
IMPLEMENTERS = ["ivan", "jane"]
SUPERVISOR = "sam"

# Who signs each (stage, role) of a normal change.
SIGNERS = {
    ("plan_submission", "it_head"): ["henry"],
    ("coo_approval", "coo"): ["carol"],
    ("trial_run", "it_pm"): ["paul"],
    ("trial_run", "business_owner"): ["bella"],
    ("go_live", "business_owner"): ["bella"],
    ("go_live", "risk_compliance"): ["rita"],
    ("go_live", "coo"): ["carol"],
    ("go_live", "president_office"): ["pam"],
    ("change_approval", "it_head"): ["henry"],
    ("implementer_ack", "it_ops"): ["ivan", "jane"],
    ("supervisor_ack", "ops_supervisor"): ["sam"],
    ("emergency_override", "coo"): ["carol"],
    (BREAK_GLASS_STAGE, "it_head"): ["henry"],
    (BREAK_GLASS_STAGE, "coo"): ["carol"],
}

# The lab's systems (Art. 1-4 catalogue). None is core_business, so the trading-session freeze
# never covers a lab run; the year-end close is scoped the same way.
SYSTEMS = [
    # Art. 20: public_services/product goes COO approval -> trial run -> go-live; its upgrades
    # COO approval -> go-live (chapter 6: the trial run only applies to a first go-live).
    {"id": "sampleapp", "name": "Lab sample application", "category": "public_services", "type": "product",
     "owner_department": "it", "environments": ["production", "staging"]},
    # The lab estate's system (the inventory's prodgate_system): environment preparation (Art. 5-9),
    # hygiene remediation (Art. 26) and its replicated database (Art. 31: switch-over, failover,
    # standby rejoin). Art. 20: customer_service covers online acceptance.
    {"id": "online_acceptance", "name": "Online acceptance (lab)", "category": "customer_service", "type": "product",
     "owner_department": "operations", "environments": ["production", "staging"]},
    # The backup host's system (inventory group backup_servers): the restore drill (Art. 22(2), 31).
    {"id": "infrastructure_backup", "name": "Backup infrastructure (lab)", "category": "it_infrastructure",
     "type": "product", "owner_department": "it", "environments": ["production", "staging"]},
]
LAB_HOSTS = ["lb1", "app1", "app2", "db1", "db2", "backup1"]
BREAK_GLASS_SECTION = {"roles_retrospective": ["it_head", "coo"], "deadline_working_days": 2}


def _now():
    return datetime.now(CST).replace(microsecond=0)


def _private(path):
    """Owner-only file: the trust contract honours PRODGATE_CONTROLLER_CONFIG only for such files."""
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


class LabWorld:
    """Keys, the signed lab policy, the governance root, the register key and controller.yml under ``root``.

    A second LabWorld on the same folder reuses what the first created (keys are read back), so
    the command line can be called step by step.
    """

    def __init__(self, root, break_glass=False, register_db=None):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for sub in ("keys", "changes", "evidence"):
            (self.root / sub).mkdir(exist_ok=True)
            os.chmod(self.root / sub, 0o700)
        self.keys = {who: self._key(who) for who in list(PEOPLE) + list(GOVERNANCE)}
        self.policy_path = self.root / "policy.yml"
        self.root_path = self.root / "governance-root.yml"
        self.config_path = self.root / "controller.yml"
        self.register_db = str(register_db or self.root / "register.db")
        self.register_key = self.root / "keys" / "register-signing.key"
        if not self.policy_path.exists():
            self._write_policy(break_glass)
        if not self.register_key.exists():
            generate_register_key(str(self.register_key))
        if not self.config_path.exists():
            self._write_controller_config()

    # ---- what the administrator and the governance key holders provide -----------------------
    def _key(self, who):
        path = self.root / "keys" / f"{who}.key"
        if path.exists():
            return dsse.load_private_key(str(path))
        key = dsse.generate_private_key()
        dsse.write_private_key(str(path), key)
        return key

    def public(self, who):
        return dsse.public_key_hex(self.keys[who].public_key())

    def policy_document(self, break_glass=False):
        doc = {
            "schema": policy_schema.POLICY_SCHEMA,
            "version": 1,
            "expires": (_now() + timedelta(days=30)).isoformat(),
            "governance": {"threshold": 2, "keys": [{"holder": g, "public_key": self.public(g)} for g in GOVERNANCE]},
            "systems": [dict(s) for s in SYSTEMS],
            "roles": {},
            "people": [{"id": who, "name": name, "roles": list(roles), "keys": [{"public_key": self.public(who)}],
                        **({"logins": list(logins)} if logins else {})}
                       for who, (name, roles, logins) in PEOPLE.items()],
            "calendar": {"timezone": "Asia/Shanghai"},
            # LAB ONLY: a lab run cannot sign its plan three working days ahead. Production keeps 3
            # (Art. 17(1)); the lead-time refusal is proven in tests/integration/change_window.
            "lead_time_working_days": 0,
            "freeze_windows": [
                {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session", "categories": ["core_business"]},
                {"name": "year-end-close", "kind": "deny", "calendar": "year_end_close", "categories": ["core_business"],
                 "exclude": {"change_types": ["routine"]}},
            ],
        }
        if break_glass:
            doc["break_glass"] = dict(BREAK_GLASS_SECTION)
        return doc

    def _write_policy(self, break_glass):
        doc = self.policy_document(break_glass)
        for holder in GOVERNANCE:
            policy_mod.sign_document(doc, self.keys[holder])
        self.policy_path.write_text(policy_mod.dump_document(doc), encoding="utf-8")
        root = {"threshold": 2, "keys": [{"holder": g, "public_key": self.public(g)} for g in GOVERNANCE]}
        self.root_path.write_text(yaml.safe_dump(root, sort_keys=False), encoding="utf-8")
        _private(self.policy_path)
        _private(self.root_path)

    def _write_controller_config(self):
        config = {
            "policy": str(self.policy_path),
            "policy_root": str(self.root_path),
            "register": {
                "db": self.register_db,
                "signing_key": str(self.register_key),
                "anchor": str(self.root / "anchor-{register_id}.json"),
                "journal_dir": str(self.root / "journal"),
            },
            # The lab runs in `production` with the real clock: no environment may use a test clock.
            "test_clock_environments": [],
            "settings_from_environment": False,
        }
        self.config_path.write_text("# Controller trust settings of the lab (tests/integration/lab_world.py)\n"
                                    + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        _private(self.config_path)

    def policy(self):
        return policy_mod.load_policy(str(self.policy_path), root=str(self.root_path))

    def env(self, base=None, callback=True):
        """The process environment of a lab run: the controller settings file and the repository's Ansible."""
        env = dict(os.environ if base is None else base)
        env.update({
            "PRODGATE_CONTROLLER_CONFIG": str(self.config_path),
            "PATH": f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
        })
        # A user-set variable must never decide trust: drop any the caller's shell had.
        for name in ("PRODGATE_POLICY", "PRODGATE_POLICY_ROOT"):
            env.pop(name, None)
        # The same register settings as controller.yml (a differing value would be refused): the
        # `prodgate register` commands read them when no --db is given.
        env.update({"PRODGATE_REGISTER_DB": self.register_db, "PRODGATE_REGISTER_SIGNING_KEY": str(self.register_key),
                    "PRODGATE_REGISTER_ANCHOR": str(self.root / "anchor-{register_id}.json"),
                    "PRODGATE_REGISTER_JOURNAL_DIR": str(self.root / "journal")})
        if callback:
            env["ANSIBLE_CALLBACKS_ENABLED"] = "prodgate.deploy.change_register"
        return env

    # ---- changes and their approvals --------------------------------------------------------
    def change(self, change_id, change_type, system, version=None, artifacts=(), targets=tuple(LAB_HOSTS),
               environment="production", extra_vars=None):
        """Write the change description and its run variables; returns the run variables' file."""
        description = {"change_id": change_id, "system": system, "environment": environment,
                       "change_type": change_type, "version": None if version is None else str(version),
                       "artifacts": list(artifacts), "targets": sorted(targets),
                       "created_at": _now().isoformat()}
        path = self.root / "changes" / f"{change_id}.yml"
        path.write_text(yaml.safe_dump(description, sort_keys=False), encoding="utf-8")
        evidence = self.root / "evidence" / change_id
        evidence.mkdir(exist_ok=True)
        run_vars = {"prodgate_change_id": change_id, "prodgate_change_type": change_type, "prodgate_system": system,
                    "prodgate_environment": environment, "prodgate_evidence": str(evidence),
                    "prodgate_implementers": list(IMPLEMENTERS), "prodgate_supervisor": SUPERVISOR}
        if version is not None:
            run_vars["prodgate_version"] = str(version)
        run_vars.update(extra_vars or {})
        vars_path = self.root / "changes" / f"{change_id}.vars.yml"
        vars_path.write_text(yaml.safe_dump(run_vars, sort_keys=False), encoding="utf-8")
        return vars_path

    def description(self, change_id):
        return yaml.safe_load((self.root / "changes" / f"{change_id}.yml").read_text(encoding="utf-8"))

    def vars_file(self, change_id):
        return self.root / "changes" / f"{change_id}.vars.yml"

    def evidence_dir(self, change_id):
        return self.root / "evidence" / change_id

    def stages(self, change_id, emergency=False):
        desc = self.description(change_id)
        return self.policy().required_stages(desc["system"], desc["change_type"], desc["environment"], emergency=emergency)

    def sign(self, change_id, stages=None, without=(), emergency=False, break_glass=False, retrospective=False,
             signers=None):
        """Sign the approvals of ``change_id``; returns [(stage, role, person)].

        ``stages``: only these (default: every stage the policy requires); ``without``: leave these
        out (e.g. trial_run and go_live for a trial run); ``emergency``: the emergency path with a
        signed override; ``break_glass``: only the on-site supervisor's and one implementer's
        acknowledgements; ``retrospective``: the retrospective approval of a break-glass change by
        the roles the policy's break_glass section names; ``signers``: {(stage, role): [people]}.
        """
        desc = self.description(change_id)
        pol = self.policy()
        who = dict(SIGNERS)
        who.update(signers or {})
        if retrospective:
            plan = [(BREAK_GLASS_STAGE, role) for role in pol.raw["break_glass"]["roles_retrospective"]]
        elif break_glass:
            who[("implementer_ack", "it_ops")] = IMPLEMENTERS[:1]
            plan = [("implementer_ack", "it_ops"), ("supervisor_ack", "ops_supervisor")]
        else:
            stages = stages or pol.required_stages(desc["system"], desc["change_type"], desc["environment"], emergency=emergency)
            plan = [(stage, role) for stage in stages if stage not in without for role in pol.stage_roles(stage)]
        # Approvals of a later stage are issued after the earlier stage's quorum (stage order).
        created = datetime.fromisoformat(desc["created_at"])
        order = list(pol.rules["stage_order"])
        now = _now()
        signed = []
        folder = self.evidence_dir(change_id)
        if retrospective:   # signed after the change, kept apart from the evidence the gate read
            folder = self.root / "evidence" / f"{change_id}-retrospective"
            folder.mkdir(exist_ok=True)
        for stage, role in plan:
            rank = order.index(stage) if stage in order else len(order)
            issued = min(created - timedelta(hours=1) + timedelta(minutes=2 * rank), now)
            if retrospective:
                issued = now
            extra = {}
            if stage == "plan_submission":
                extra["planned_start"] = created + timedelta(minutes=10)
            if stage == "emergency_override":
                extra["reason"] = "lab: primary database lost, failover now"
            for person in who.get((stage, role), []):
                statement = approvals.make_statement(
                    {k: desc.get(k) for k in ("change_id", "system", "environment", "change_type", "version",
                                              "artifacts", "targets")},
                    stage, role, person, not_before=issued - timedelta(minutes=1),
                    not_after=now + timedelta(hours=12), issued_at=issued, **extra)
                envelope = approvals.sign_statement(statement, self.keys[person])
                out = folder / f"{len(list(folder.iterdir())):03d}-{stage}-{person}.json"
                out.write_text(json.dumps(envelope), encoding="utf-8")
                signed.append((stage, role, person))
        return signed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    init = sub.add_parser("init", help="keys, the signed lab policy, the governance root and controller.yml")
    init.add_argument("dir")
    init.add_argument("--break-glass", action="store_true", help="add the policy's break_glass section")
    chg = sub.add_parser("change", help="write a change description and its run variables")
    chg.add_argument("dir")
    chg.add_argument("id")
    chg.add_argument("--type", required=True)
    chg.add_argument("--system", required=True)
    chg.add_argument("--environment", default="production")
    chg.add_argument("--version")
    chg.add_argument("--artifact", action="append", default=[])
    chg.add_argument("--target", action="append", default=None)
    chg.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="another run variable")
    sig = sub.add_parser("sign", help="sign the approvals a change needs")
    sig.add_argument("dir")
    sig.add_argument("id")
    sig.add_argument("--stage", action="append", default=None)
    sig.add_argument("--without", action="append", default=[])
    sig.add_argument("--emergency", action="store_true")
    sig.add_argument("--break-glass", action="store_true")
    sig.add_argument("--retrospective", action="store_true")
    args = parser.parse_args(argv)
    world = LabWorld(args.dir, break_glass=getattr(args, "break_glass", False))
    if args.cmd == "init":
        print(json.dumps({"policy": str(world.policy_path), "policy_root": str(world.root_path),
                          "controller_config": str(world.config_path), "register_db": world.register_db}))
    elif args.cmd == "change":
        extra = dict(item.split("=", 1) for item in args.var)
        print(world.change(args.id, args.type, args.system, version=args.version, artifacts=args.artifact,
                           targets=args.target or LAB_HOSTS, environment=args.environment, extra_vars=extra))
    else:
        for stage, role, person in world.sign(args.id, stages=args.stage, without=args.without, emergency=args.emergency,
                                              break_glass=args.break_glass, retrospective=args.retrospective):
            print(f"{stage} {role} {person}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
