# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy's schema and approval rules: what a policy may say, and the rules in force.

The vocabulary (roles, categories, change types, stages), the shipped defaults
(``policy_defaults.yml``) merged with the policy's own sections (:func:`effective_rules`), and
:func:`validate_document`, which lists every problem as 'path: what is wrong; fix'. The sections
other rooms own are checked by their owner: ``freeze_windows`` and ``calendar`` by schedule/.
Reading, signing and loading a policy are in policy.py.
"""
import copy
import os
import re

import yaml

from . import dsse
from ..base import parse_time
from ..errors import PolicyError
from ..schedule.windows import parse_windows

POLICY_SCHEMA = "prodgate/policy/v1"
CATEGORIES = ("it_infrastructure", "it_management", "core_business", "customer_service",
              "market_support", "decision_support", "public_services")
SYSTEM_TYPES = ("product", "custom")
ACK_STAGES = ("implementer_ack", "supervisor_ack")
EMERGENCY_STAGE = "emergency_override"
RETROSPECTIVE_STAGE = "retrospective_approval"
FOREIGN_SECTIONS = ("freeze_windows", "calendar", "lead_time_working_days", "register", "break_glass")
OWN_SECTIONS = ("schema", "version", "expires", "governance", "systems", "people", "roles", "stages",
                "stage_order", "go_live_matrix", "change_types", "environments", "emergency", "signatures")
MERGED_SECTIONS = ("roles", "go_live_matrix")
REPLACED_SECTIONS = ("stages", "stage_order", "change_types", "environments", "emergency")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
FIX_SIGN = "fix it and re-sign with `prodgate policy sign`"


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_BaseLoader):  # pylint: disable=too-many-ancestors
    """SafeLoader (libyaml when present) that keeps timestamps as strings: the signed bytes must
    not depend on how a YAML library parses dates."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_defaults():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policy_defaults.yml")
    with open(path, "r", encoding="utf-8") as handle:
        return yaml.load(handle, Loader=Loader)  # nosec B506


# Read at import: Ansible imports the action plugin in the controller process before forking
# workers, so each gate task inherits the parsed defaults instead of parsing them again.
_DEFAULTS = load_defaults()


def defaults():
    return copy.deepcopy(_DEFAULTS)


def effective_rules(doc):
    """The approval rules in force: shipped defaults overridden by the policy's own sections."""
    rules = defaults()
    for section in REPLACED_SECTIONS:
        if section in doc:
            rules[section] = copy.deepcopy(doc[section])
    for section in MERGED_SECTIONS:
        if isinstance(doc.get(section), dict):
            merged = rules.get(section) or {}
            for key, value in doc[section].items():
                if section == "go_live_matrix" and isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            rules[section] = merged
    return rules


# ---- schema ---------------------------------------------------------------------------------

class Checker:
    """Collects schema problems as 'path: what is wrong; fix'."""

    def __init__(self):
        self.problems = []

    def add(self, path, message, fix=FIX_SIGN):
        self.problems.append(f"{path}: {message}; {fix}")

    def typed(self, value, kind, path, what):
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.add(path, f"expected {what}, got {type(value).__name__} {value!r}"[:200])
        return ok

    def ident(self, value, path):
        if self.typed(value, str, path, "an identifier string") and not ID_RE.match(value):
            self.add(path, f"{value!r} is not a valid identifier (letters, digits, . _ -)")
            return False
        return isinstance(value, str)

    def one_of(self, value, allowed, path):
        if value not in allowed:
            self.add(path, f"{value!r} is not one of [{', '.join(allowed)}]")
            return False
        return True

    def ident_list(self, value, path, allowed=None):
        if not self.typed(value, list, path, "a list"):
            return []
        out = []
        for i, item in enumerate(value):
            if self.ident(item, f"{path}[{i}]") and (allowed is None or self.one_of(item, allowed, f"{path}[{i}]")):
                out.append(item)
        return out


GOVERNANCE_KEY_FIELDS = ("holder", "public_key", "keyid", "revoked", "comment")
PERSON_KEY_FIELDS = ("public_key", "keyid", "revoked", "comment")


def _check_key_fields(chk, key, kpath, allowed):
    unknown = sorted(str(k) for k in key if k not in allowed)
    if unknown:
        chk.add(kpath, f"unknown field(s) {unknown} in a key entry; allowed are {', '.join(allowed)}",
                "remove them or correct their spelling (a misspelt `revoked` would leave a key valid)")
    if "revoked" in key:
        chk.typed(key["revoked"], bool, f"{kpath}.revoked", "true or false")


def check_governance(chk, gov, path="governance"):
    if not chk.typed(gov, dict, path, "a mapping with threshold and keys"):
        return
    threshold = gov.get("threshold")
    if chk.typed(threshold, int, f"{path}.threshold", "an integer >= 1") and threshold < 1:
        chk.add(f"{path}.threshold", "must be at least 1")
    keys = gov.get("keys")
    if not chk.typed(keys, list, f"{path}.keys", "a list of governance keys"):
        return
    seen = {}
    active = 0
    for i, key in enumerate(keys):
        kpath = f"{path}.keys[{i}]"
        if not chk.typed(key, dict, kpath, "a mapping with holder and public_key"):
            continue
        chk.typed(key.get("holder"), str, f"{kpath}.holder", "the name of the key holder")
        _check_key_fields(chk, key, kpath, GOVERNANCE_KEY_FIELDS)
        _check_public_key(chk, key, kpath)
        pub = key.get("public_key")
        if isinstance(pub, str):
            if pub in seen:
                chk.add(kpath, f"the same governance key is listed twice (also {seen[pub]})",
                        "list each key once; revoke it with `revoked: true` on its one entry")
            seen[pub] = kpath
        if key.get("revoked") is not True:
            active += 1
    if isinstance(threshold, int) and not isinstance(threshold, bool) and threshold > active:
        chk.add(f"{path}.threshold", f"{threshold} is more than the {active} governance keys listed and not revoked")


def _check_public_key(chk, key, kpath):
    pub = key.get("public_key")
    if not (isinstance(pub, str) and HEX64_RE.match(pub)):
        chk.add(f"{kpath}.public_key", "expected 64 lowercase hex characters (an Ed25519 public key)",
                "copy the public_key printed by `prodgate keys generate`")
        return
    if "keyid" in key and key["keyid"] != dsse.keyid_of(pub):
        chk.add(f"{kpath}.keyid", f"does not match the public key (expected {dsse.keyid_of(pub)})",
                "remove keyid or correct it")


def validate_document(doc):
    """Schema problems of a policy document (empty list when valid)."""
    chk = Checker()
    for key in doc:
        if key not in OWN_SECTIONS and key not in FOREIGN_SECTIONS and not str(key).startswith("x_"):
            chk.add(str(key), "unknown top-level section", "remove it or correct its spelling (extensions start with x_)")
    if doc.get("schema") != POLICY_SCHEMA:
        chk.add("schema", f"expected {POLICY_SCHEMA!r}, got {doc.get('schema')!r}")
    version = doc.get("version")
    if chk.typed(version, int, "version", "an integer >= 1") and version < 1:
        chk.add("version", "must be at least 1")
    try:
        parse_time(doc.get("expires"), "expires")
    except ValueError as exc:
        chk.add("expires", str(exc).split(": ", 1)[1])
    check_governance(chk, doc.get("governance"))
    _check_foreign(chk, doc)
    rules = effective_rules(doc)
    roles = _check_roles(chk, rules.get("roles"))
    stages = _check_stages(chk, rules, roles)
    _check_matrix(chk, rules.get("go_live_matrix"), stages)
    _check_change_types(chk, rules.get("change_types"), stages)
    envs = _check_environments(chk, rules.get("environments"))
    _check_emergency(chk, rules.get("emergency"), roles, stages)
    _check_systems(chk, doc.get("systems"), envs)
    _check_people(chk, doc.get("people"), roles)
    sigs = doc.get("signatures", [])
    if chk.typed(sigs, list, "signatures", "a list"):
        for i, sig in enumerate(sigs):
            if not (isinstance(sig, dict) and isinstance(sig.get("keyid"), str) and isinstance(sig.get("sig"), str)):
                chk.add(f"signatures[{i}]", "expected {keyid, sig}", "re-sign with `prodgate policy sign`")
    return chk.problems


def _check_foreign(chk, doc):
    # The freeze windows and calendar settings are validated by their one owner, schedule/
    # (Art. 17, 28), so `policy check`, the gate and change_window refuse the same mistakes.
    windows_ok = "freeze_windows" not in doc or chk.typed(doc["freeze_windows"], list, "freeze_windows", "a list")
    calendar_ok = "calendar" not in doc or chk.typed(doc["calendar"], dict, "calendar", "a mapping")
    if windows_ok and calendar_ok and ("freeze_windows" in doc or "calendar" in doc):
        try:
            parse_windows(doc.get("freeze_windows"), "policy", doc.get("calendar"))
        except PolicyError as exc:
            chk.add("freeze_windows", str(exc).replace("policy: ", "", 1), "fix the window as the message says, then re-sign")
    if "register" in doc:
        chk.typed(doc["register"], dict, "register", "a mapping")
    if "break_glass" in doc:
        # Validated by its one owner, break_glass.py (imported here to keep the import graph acyclic).
        from . import break_glass  # pylint: disable=import-outside-toplevel
        try:
            break_glass.parse_rule(doc["break_glass"], "break_glass", known_roles=effective_rules(doc).get("roles"))
        except PolicyError as exc:
            chk.add("break_glass", str(exc).replace("break_glass: ", "", 1), "fix the section as the message says, then re-sign")
    if "lead_time_working_days" in doc:
        value = doc["lead_time_working_days"]
        if chk.typed(value, int, "lead_time_working_days", "an integer >= 0") and value < 0:
            chk.add("lead_time_working_days", "must not be negative")


def _check_roles(chk, roles):
    if not chk.typed(roles, dict, "roles", "a mapping role -> {threshold}"):
        return {}
    out = {}
    for name, spec in roles.items():
        path = f"roles.{name}"
        if not chk.ident(name, path):
            continue
        if not chk.typed(spec, dict, path, "a mapping with threshold"):
            continue
        threshold = spec.get("threshold")
        if chk.typed(threshold, int, f"{path}.threshold", "an integer >= 1"):
            if threshold < 1:
                chk.add(f"{path}.threshold", "must be at least 1")
            else:
                out[name] = threshold
    return out


def _check_stages(chk, rules, roles):
    stages = rules.get("stages")
    if not chk.typed(stages, dict, "stages", "a mapping stage -> {roles}"):
        return set()
    for name, spec in stages.items():
        path = f"stages.{name}"
        if not chk.ident(name, path) or not chk.typed(spec, dict, path, "a mapping with roles"):
            continue
        for i, role in enumerate(chk.ident_list(spec.get("roles"), f"{path}.roles")):
            if role not in roles:
                chk.add(f"{path}.roles[{i}]", f"role {role!r} has no entry under roles", "add it under roles with a threshold")
        if name != EMERGENCY_STAGE and not spec.get("roles"):
            chk.add(f"{path}.roles", "a stage needs at least one role")
    for stage in ACK_STAGES + (EMERGENCY_STAGE,):
        if stage not in stages:
            chk.add(f"stages.{stage}", "this stage is required by the gate (Art. 27 / emergency rules)")
    order = rules.get("stage_order")
    for i, stage in enumerate(chk.ident_list(order, "stage_order")):
        if stage not in stages:
            chk.add(f"stage_order[{i}]", f"unknown stage {stage!r}")
    return set(stages)


def _check_matrix(chk, matrix, stages):
    if not chk.typed(matrix, dict, "go_live_matrix", "a mapping category -> type -> {first, upgrade}"):
        return
    for cat in CATEGORIES:
        if cat not in matrix:
            chk.add(f"go_live_matrix.{cat}", "missing category (Art. 20)")
    for cat, per_type in matrix.items():
        if not chk.one_of(cat, CATEGORIES, f"go_live_matrix.{cat}") or not chk.typed(per_type, dict, f"go_live_matrix.{cat}", "a mapping"):
            continue
        for typ in SYSTEM_TYPES:
            spec = per_type.get(typ)
            path = f"go_live_matrix.{cat}.{typ}"
            if not chk.typed(spec, dict, path, "a mapping with first and upgrade"):
                continue
            for path_name in ("first", "upgrade"):
                for i, stage in enumerate(chk.ident_list(spec.get(path_name), f"{path}.{path_name}")):
                    if stage not in stages:
                        chk.add(f"{path}.{path_name}[{i}]", f"unknown stage {stage!r}")


def _check_change_types(chk, types, stages):
    if not chk.typed(types, dict, "change_types", "a mapping"):
        return
    for name, spec in types.items():
        path = f"change_types.{name}"
        if not chk.ident(name, path) or not chk.typed(spec, dict, path, "a mapping"):
            continue
        if "matrix" in spec:
            chk.one_of(spec["matrix"], ("first", "upgrade"), f"{path}.matrix")
        for i, stage in enumerate(chk.ident_list(spec.get("stages", []), f"{path}.stages")):
            if stage not in stages:
                chk.add(f"{path}.stages[{i}]", f"unknown stage {stage!r}")
        if "requires_artifacts" in spec:
            chk.typed(spec["requires_artifacts"], bool, f"{path}.requires_artifacts", "true or false")


def _check_environments(chk, envs):
    if not chk.typed(envs, dict, "environments", "a mapping name -> {production}"):
        return set()
    for name, spec in envs.items():
        if chk.ident(name, f"environments.{name}") and chk.typed(spec, dict, f"environments.{name}", "a mapping"):
            chk.typed(spec.get("production"), bool, f"environments.{name}.production", "true or false")
    return set(envs)


def _check_emergency(chk, emergency, roles, stages):
    if not chk.typed(emergency, dict, "emergency", "a mapping"):
        return
    for i, role in enumerate(chk.ident_list(emergency.get("authorisers"), "emergency.authorisers")):
        if role not in roles:
            chk.add(f"emergency.authorisers[{i}]", f"role {role!r} has no entry under roles")
    threshold = emergency.get("threshold")
    if chk.typed(threshold, int, "emergency.threshold", "an integer >= 1") and threshold < 1:
        chk.add("emergency.threshold", "must be at least 1")
    for i, stage in enumerate(chk.ident_list(emergency.get("waives", []), "emergency.waives")):
        if stage not in stages:
            chk.add(f"emergency.waives[{i}]", f"unknown stage {stage!r}")
        elif stage in ("go_live",) + ACK_STAGES:
            chk.add(f"emergency.waives[{i}]", f"{stage} can never be waived (Art. 16, 18, 27)")
    hours = emergency.get("max_validity_hours")
    if chk.typed(hours, int, "emergency.max_validity_hours", "an integer >= 1") and hours < 1:
        chk.add("emergency.max_validity_hours", "must be at least 1")


def _named_entries(chk, entries, section, what):
    """Yield (path, entry) for each mapping of a list section, after checking its id (unique) and name."""
    seen = set()
    for i, entry in enumerate(entries):
        path = f"{section}[{i}]"
        if not chk.typed(entry, dict, path, "a mapping"):
            continue
        eid = entry.get("id")
        if chk.ident(eid, f"{path}.id"):
            if eid in seen:
                chk.add(f"{path}.id", f"duplicate {what} id {eid!r}")
            seen.add(eid)
        chk.typed(entry.get("name"), str, f"{path}.name", "a name")
        yield path, entry


def _check_systems(chk, systems, envs):
    if not chk.typed(systems, list, "systems", "a list of systems (Art. 1-4 catalogue)"):
        return
    for path, system in _named_entries(chk, systems, "systems", "system"):
        chk.one_of(system.get("category"), CATEGORIES, f"{path}.category")
        chk.one_of(system.get("type"), SYSTEM_TYPES, f"{path}.type")
        chk.typed(system.get("owner_department"), str, f"{path}.owner_department", "the owning department")
        for j, env in enumerate(chk.ident_list(system.get("environments"), f"{path}.environments")):
            if env not in envs:
                chk.add(f"{path}.environments[{j}]", f"environment {env!r} is not declared under environments")


def _check_people(chk, people, roles):
    if not chk.typed(people, list, "people", "a list of people"):
        return
    keyids = {}
    for path, person in _named_entries(chk, people, "people", "person"):
        pid = person.get("id")
        for j, role in enumerate(chk.ident_list(person.get("roles"), f"{path}.roles")):
            if role not in roles:
                chk.add(f"{path}.roles[{j}]", f"role {role!r} has no entry under roles")
        if "logins" in person:
            chk.ident_list(person["logins"], f"{path}.logins")
        keys = person.get("keys")
        if not chk.typed(keys, list, f"{path}.keys", "a list of public keys"):
            continue
        for j, key in enumerate(keys):
            kpath = f"{path}.keys[{j}]"
            if not chk.typed(key, dict, kpath, "a mapping with public_key"):
                continue
            _check_key_fields(chk, key, kpath, PERSON_KEY_FIELDS)
            _check_public_key(chk, key, kpath)
            pub = key.get("public_key")
            if isinstance(pub, str) and HEX64_RE.match(pub):
                kid = dsse.keyid_of(pub)
                if kid in keyids and keyids[kid] != pid:
                    chk.add(kpath, f"the same key is also listed for {keyids[kid]}", "each key belongs to exactly one person")
                elif kid in keyids:
                    chk.add(kpath, f"the same key is listed twice for {pid}",
                            "list each key once; revoke it with `revoked: true` on its one entry")
                keyids[kid] = pid
