"""The signed policy file: systems catalogue, people and keys, roles, the Art. 20 matrix.

``load_policy(path)`` is the one way to read a policy: it parses the YAML, checks that the
governance keys signed it (threshold, TUF-style), that it has not expired, and validates it
against the schema (policy_schema.py); every refusal is a :class:`PolicyError` naming the file,
the path inside it and the fix. Sections owned by other parts of prodgate (``freeze_windows``,
``calendar``, ``lead_time_working_days``, ``register``, ``break_glass``) are signed with the rest
and checked by their owner (schedule/, break_glass.py); they reach their owner through
``policy.raw`` and the convenience attributes.

Signing: the body is the whole document without its ``signatures`` list, serialised as
canonical JSON (sorted keys, no spaces, UTF-8) and signed with DSSE's pre-authentication
encoding under payload type ``application/vnd.prodgate.policy+json``. YAML timestamps are
kept as strings so that the signed bytes do not depend on the YAML library.
"""
import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime


from .. import base, input_files
from ..base import parse_time, utcnow
from . import dsse
from ..errors import ApprovalError, PolicyError
from .policy_schema import (ACK_STAGES, EMERGENCY_STAGE, POLICY_SCHEMA, RETROSPECTIVE_STAGE, Checker, Loader,
                            check_governance, effective_rules, validate_document)

POLICY_PAYLOAD_TYPE = "application/vnd.prodgate.policy+json"


def canonical_json(data):
    """The signed bytes of a policy or pack body (base.canonical_json), or a PolicyError naming the bad value."""
    try:
        return base.canonical_json(data).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"policy contains a value that is not plain JSON data ({exc}); use strings, numbers, lists and maps") from None


def read_policy_document(path):
    """Parse the YAML (no verification) -> dict. The file is untrusted until its signatures verify:
    a regular file of at most 16 MiB, UTF-8, without YAML anchors or aliases (nothing is expanded
    before the signature check) and nested at most 64 levels (input_files)."""
    fix = "; give the path of the signed policy file (the controller's `policy` setting)"
    text = input_files.read_text(path, "policy", PolicyError, fix=fix)
    path = os.fspath(path)
    doc = input_files.parse_yaml(text, f"policy {path}", Loader, PolicyError)
    if not isinstance(doc, dict):
        raise PolicyError(f"policy {path}: the document must be a mapping with schema: {POLICY_SCHEMA}")
    return doc


def policy_body(doc):
    return {k: v for k, v in doc.items() if k != "signatures"}


def sign_document(doc, private_key):
    """Add (or replace) the signature of ``private_key`` on ``doc``; returns the key id."""
    return dsse.add_signature(doc, private_key, POLICY_PAYLOAD_TYPE, canonical_json(policy_body(doc)))


def dump_document(doc):
    """YAML text of a policy document (signatures last)."""
    return dsse.dump_signed(policy_body(doc), doc.get("signatures"))


# ---- the loaded policy ----------------------------------------------------------------------

@dataclass
class PersonKey:
    keyid: str
    person: str
    public_key: object
    revoked: bool = False


@dataclass
class Policy:  # pylint: disable=too-many-instance-attributes
    """A verified policy. ``raw`` is the whole document as signed (including others' sections)."""
    path: str
    raw: dict
    version: int
    expires: datetime
    systems: dict
    people: dict
    keys: dict
    rules: dict
    signed_by: list = field(default_factory=list)
    pinned: bool = False
    root_id: str = None

    @property
    def freeze_windows(self):
        return self.raw.get("freeze_windows", [])

    @property
    def calendar(self):
        return self.raw.get("calendar", {})

    @property
    def lead_time_working_days(self):
        return self.raw.get("lead_time_working_days", 3)

    @property
    def register(self):
        return self.raw.get("register", {})

    @property
    def roles(self):
        return {name: spec["threshold"] for name, spec in self.rules["roles"].items()}

    @property
    def emergency(self):
        return self.rules["emergency"]

    def stage_roles(self, stage):
        if stage == EMERGENCY_STAGE:
            return list(self.rules["emergency"]["authorisers"])
        if stage == RETROSPECTIVE_STAGE and stage not in self.rules["stages"]:
            # Signed after a break-glass change by the roles of the policy's break_glass section (break_glass.py).
            return list((self.raw.get("break_glass") or {}).get("roles_retrospective") or [])
        return list(self.rules["stages"][stage]["roles"])

    def is_production(self, environment):
        return bool(self.rules["environments"].get(environment, {}).get("production", True))

    def system(self, system_id):
        try:
            return self.systems[system_id]
        except KeyError:
            raise ApprovalError(f"system {system_id!r} is not in the policy's systems catalogue ({self.path}); "
                                "use one of [" + ", ".join(sorted(self.systems)) + "] or add it to the policy and re-sign") from None

    def required_stages(self, system_id, change_type, environment, emergency=False):
        """Stages this change needs, in stage order, then the Art. 27 acknowledgements."""
        system = self.system(system_id)
        if environment not in system.get("environments", []):
            raise ApprovalError(f"system {system_id} has no environment {environment!r} in the policy; "
                                f"use one of {system.get('environments', [])}")
        types = self.rules["change_types"]
        if change_type not in types:
            raise ApprovalError(f"change type {change_type!r} is not defined in the policy; use one of [{', '.join(types)}] (Art. 25)")
        spec = types[change_type]
        needed = []
        if spec.get("matrix"):
            needed += self.rules["go_live_matrix"][system["category"]][system["type"]][spec["matrix"]]
        needed += spec.get("stages", [])
        if emergency:
            waived = set(self.rules["emergency"].get("waives", []))
            needed = [s for s in needed if s not in waived] + [EMERGENCY_STAGE]
        seen = []
        for stage in sorted(needed, key=self._path_key):
            if stage not in seen:
                seen.append(stage)
        if self.is_production(environment):
            seen += [s for s in ACK_STAGES if s not in seen]
        return seen

    # The order of a change's stages is decided here and nowhere else: required_stages lists
    # them in it, the gate checks the signing order with path_of and a run that stops before a
    # stage (the trial run) takes its stages from stages_before.

    def stage_rank(self, stage):
        """Position of ``stage`` on the approval path (``stage_order``); None for the stages outside
        it - the Art. 27 acknowledgements and the emergency override - which are not steps of the
        path but conditions of every run of the change."""
        order = self.rules["stage_order"]
        return order.index(stage) if stage in order else None

    def _path_key(self, stage):
        rank = self.stage_rank(stage)
        return len(self.rules["stage_order"]) if rank is None else rank

    def path_of(self, stages):
        """The steps of the approval path among ``stages``, in stage order."""
        return sorted((s for s in stages if self.stage_rank(s) is not None), key=self._path_key)

    def stages_before(self, required, stage):
        """Split the ``required`` stages of a change (from :meth:`required_stages`) for a run that
        stops before ``stage`` (the trial run, Art. 18, 20): ``(due, pending)``.

        ``due``: the path's steps ordered before ``stage`` and the stages outside the path (the
        Art. 27 acknowledgements, the emergency override), which every run needs; ``pending``:
        ``stage`` and the steps after it. ApprovalError when ``stage`` is not a step of the path."""
        rank = self.stage_rank(stage)
        if stage not in required or rank is None:
            path = self.path_of(required)
            raise ApprovalError(f"the change's approval path [{', '.join(path)}] has no {stage} step, so no run can stop "
                                f"before it; run the gate for every stage (stage: all)")
        due = [s for s in required if self.stage_rank(s) is None or self.stage_rank(s) < rank]
        return due, [s for s in required if s not in due]

    def requires_artifacts(self, change_type):
        return bool(self.rules["change_types"].get(change_type, {}).get("requires_artifacts", False))


def load_root(path):
    """A pinned governance root: a YAML file with ``threshold`` and ``keys`` (or under ``governance``)."""
    doc = read_policy_document(path)
    gov = doc.get("governance", doc)
    chk = Checker()
    check_governance(chk, gov, "governance")
    if chk.problems:
        raise PolicyError(f"policy root {path}: " + "; ".join(chk.problems))
    return gov


def governance_signers(signatures, governance, payload_type, payload, where):
    """Key ids of the governance keys (not revoked) whose signature over ``payload`` verifies: the one
    threshold check of every governance-signed document (the policy, calendar packs)."""
    keys = {dsse.keyid_of(k["public_key"]): dsse.parse_public_key(k["public_key"], where)
            for k in governance["keys"] if k.get("revoked") is not True}  # a revoked governance key never counts
    good = []
    for sig in signatures or []:
        if not isinstance(sig, dict):
            continue
        key = keys.get(sig.get("keyid"))
        if key is None or sig.get("keyid") in good:
            continue
        try:
            raw = dsse.b64decode(sig.get("sig"))
        except ValueError:
            continue
        if dsse.verify_signature(key, payload_type, payload, raw):
            good.append(sig["keyid"])
    return good


def verify_signatures(doc, governance, where):
    """Key ids of the governance keys whose signature verifies; PolicyError if below threshold."""
    sigs = doc.get("signatures") or []
    if not sigs:
        raise PolicyError(f"policy {where} is not signed: it needs {governance['threshold']} governance signature(s); "
                          "sign it with `prodgate policy sign " + where + " --key <governance key>`")
    good = governance_signers(sigs, governance, POLICY_PAYLOAD_TYPE, canonical_json(policy_body(doc)), where)
    if len(good) < governance["threshold"]:
        raise PolicyError(
            f"policy {where} signatures do not verify: {len(good)} valid governance signature(s), need {governance['threshold']}; "
            "the file was altered after signing or signed by unknown keys; restore the signed version or have the governance "
            "key holders re-sign it with `prodgate policy sign`")
    return good


def governance_root_id(governance):
    """A stable id of a governance root (its sorted key ids and threshold): the anti-rollback scope."""
    kids = sorted(dsse.keyid_of(k["public_key"]) for k in governance["keys"])
    return hashlib.sha256(canonical_json({"threshold": governance["threshold"], "keys": kids})).hexdigest()[:32]


def load_policy(path, now=None, root=None):
    """Load, verify (signatures, expiry, schema) and return a :class:`Policy`.

    ``root`` names a pinned governance root file; without one, the governance keys listed in the
    policy itself are used (``pinned`` is then false, which production refuses:
    :func:`trust.load_trusted_policy`). The controller trust settings, never the run or
    the environment, choose the root.
    """
    now = now or utcnow()
    path = os.fspath(path)
    doc = read_policy_document(path)
    if root:
        governance = load_root(root)
    else:
        governance = doc.get("governance")
        chk = Checker()
        check_governance(chk, governance)
        if chk.problems:
            raise PolicyError(f"policy {path}: " + "; ".join(chk.problems))
    signed_by = verify_signatures(doc, governance, path)
    problems = validate_document(doc)
    if problems:
        raise PolicyError(f"policy {path} is invalid: " + " | ".join(problems))
    expires = parse_time(doc["expires"], "expires")
    if now >= expires:
        raise PolicyError(f"policy {path} expired at {doc['expires']} (version {doc['version']}); "
                          "the governance key holders must issue a new version with a later `expires` and sign it")
    policy = build_policy(doc, path, signed_by, pinned=bool(root))
    policy.root_id = governance_root_id(governance)
    return policy


def build_policy(doc, path, signed_by=(), pinned=False):
    """A Policy from a schema-valid document, without verifying signatures (for `policy check`)."""
    keys, people = {}, {}
    for person in doc["people"]:
        people[person["id"]] = person
        for key in person["keys"]:
            kid = dsse.keyid_of(key["public_key"])
            # A key listed twice is a schema error; should one slip through, revoked anywhere means revoked.
            revoked = key.get("revoked") is not False and bool(key.get("revoked")) or (kid in keys and keys[kid].revoked)
            keys[kid] = PersonKey(kid, person["id"], dsse.parse_public_key(key["public_key"]), revoked)
    return Policy(path=path, raw=doc, version=doc["version"], expires=parse_time(doc["expires"], "expires"),
                  systems={s["id"]: s for s in doc["systems"]}, people=people, keys=keys,
                  rules=effective_rules(doc), signed_by=list(signed_by), pinned=pinned)
