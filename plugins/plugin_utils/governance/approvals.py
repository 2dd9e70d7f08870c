"""Signed approvals (DSSE over in-toto Statement v1) and their verification against a change.

One envelope per approver and stage. The statement's subject is the release artifact(s) by
sha256; its predicate binds the change (id, system, environment, change type, version, plan
digest, targets), the stage and role, a validity window and a single-use nonce:

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "ta-core-3.2.1.tar.gz", "digest": {"sha256": "..."}}],
     "predicateType": "https://prodgate.invalid/change-approval/v1",
     "predicate": {"change_id": "CHG-1", "system": "ta-core", "environment": "production",
                   "change_type": "version_update", "version": "3.2.1", "stage": "go_live",
                   "role": "coo", "person": "carol", "decision": "approve",
                   "targets": ["app1", "app2"], "plan_digest": {"sha256": "..."},
                   "issued_at": "...+08:00", "not_before": "...", "not_after": "...",
                   "nonce": "<uuid4 hex>", "reason": "...", "planned_start": "..."}}

Here: making and signing approvals, reading the evidence folder, and checking one envelope
against the change (:func:`verify_envelope`). What a set of approvals must add up to, and the
gate's decision, are in gate.py.
"""
import fnmatch
import hashlib
import json
import os
import re
import stat
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from .. import input_files
from . import dsse
from ..errors import ApprovalError
from ..base import parse_time, utcnow
from .policy_schema import EMERGENCY_STAGE

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://prodgate.invalid/change-approval/v1"
BINDING_FIELDS = ("change_id", "system", "environment", "change_type", "version")
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
SHA256_RE = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")
CLOCK_SKEW = timedelta(minutes=5)


# ---- making approvals -----------------------------------------------------------------------

def artifact_digest(item):
    """A sha256 hex digest from ``sha256:<hex>``, ``<hex>`` or a readable file path."""
    if isinstance(item, str):
        match = SHA256_RE.match(item.strip())
        if match:
            return match.group(1).lower()
        if os.path.isfile(item):
            digest = hashlib.sha256()
            with open(item, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            return digest.hexdigest()
    raise ApprovalError(f"artifact {item!r} is neither a sha256 digest nor a readable file; "
                        "give the release package path or its sha256 (prodgate_artifacts)")


def make_statement(binding, stage, role, person, not_before, not_after, issued_at=None, nonce=None,
                   reason=None, planned_start=None, decision="approve", artifact_names=None):
    """An in-toto Statement v1 approving ``stage`` of the change described by ``binding``."""
    digests = [artifact_digest(a) for a in binding.get("artifacts") or []]
    names = artifact_names or {}
    subject = [{"name": names.get(d, f"artifact-{d[:12]}"), "digest": {"sha256": d}} for d in digests]
    if not subject:
        # A change without a release artifact (routine operation) is bound to its change id.
        subject = [{"name": f"change:{binding['change_id']}",
                    "digest": {"sha256": hashlib.sha256(binding["change_id"].encode("utf-8")).hexdigest()}}]
    predicate = {name: binding.get(name) for name in BINDING_FIELDS}
    predicate.update({
        "stage": stage, "role": role, "person": person, "decision": decision,
        "targets": sorted(binding.get("targets") or []),
        "issued_at": _iso(issued_at or utcnow()), "not_before": _iso(not_before), "not_after": _iso(not_after),
        "nonce": nonce or uuid.uuid4().hex,
    })
    if binding.get("plan_digest"):
        predicate["plan_digest"] = {"sha256": binding["plan_digest"]}
    if reason:
        predicate["reason"] = reason
    if planned_start:
        predicate["planned_start"] = _iso(planned_start)
    return {"_type": STATEMENT_TYPE, "subject": subject, "predicateType": PREDICATE_TYPE, "predicate": predicate}


def _iso(value):
    return value if isinstance(value, str) else value.isoformat()


def sign_statement(statement, private_key):
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return dsse.sign_envelope(payload, private_key)


# ---- reading evidence -----------------------------------------------------------------------

def _envelopes_in(data, source):
    if isinstance(data, dict) and "envelopes" in data and isinstance(data["envelopes"], list):
        data = data["envelopes"]
    items = data if isinstance(data, list) else [data]
    out = []
    for i, item in enumerate(items):
        env = dict(item) if isinstance(item, dict) else {"_invalid": item}
        env["_source"] = source if len(items) == 1 else f"{source}#{i}"
        out.append(env)
    return out


# Evidence is the launcher's input (docs/approvals.md, threat model): bounded before it is read.
MAX_EVIDENCE_FILES = 10_000
MAX_EVIDENCE_FOLDER_BYTES = 64 * input_files.MiB
_EVIDENCE_FIX = "; set prodgate_evidence to the folder or JSON file of signed approvals"
_ENTRY_FIX = "; only the *.json files `prodgate approve` wrote belong in the evidence folder: remove or replace it"


def _evidence_files(path):
    """[(full path, name)] of a folder's ``*.json`` entries, or of the one evidence file."""
    if not os.path.isdir(path):
        return [(path, os.path.basename(path))]
    try:
        names = sorted(n for n in os.listdir(path) if n.endswith(".json"))
    except OSError as exc:
        raise ApprovalError(f"evidence folder {path} cannot be listed: {exc.strerror or exc}{_EVIDENCE_FIX}") from None
    if not names:
        raise ApprovalError(f"evidence folder {path} holds no *.json envelopes; put the signed approvals "
                            "(`prodgate approve --out`) there or set prodgate_evidence")
    if len(names) > MAX_EVIDENCE_FILES:
        raise ApprovalError(f"evidence folder {path} holds {len(names)} *.json files, more than the {MAX_EVIDENCE_FILES} "
                            f"prodgate reads: keep only the approvals of the change there{_EVIDENCE_FIX}")
    return [(os.path.join(path, n), n) for n in names]


def _read_evidence_file(full, folder):
    """Parsed JSON of one evidence file, and its size; ApprovalError naming the file otherwise. In a
    folder, a symlink may not lead out of it (the launcher could point it at any file or device)."""
    fix = _ENTRY_FIX if folder else _EVIDENCE_FIX
    if folder:
        real = os.path.realpath(full)
        if os.path.commonpath([folder, real]) != folder:
            try:
                mode = os.stat(full).st_mode
                what = "" if stat.S_ISREG(mode) else f" ({input_files.kind_of(mode)})"
            except OSError:
                what = " (missing)"
            raise ApprovalError(f"evidence {full} is a symlink to {real}{what}, outside the evidence folder: copy the "
                                f"approval into the folder{fix}")
    data = input_files.read_file(full, "evidence", ApprovalError, fix=fix)
    return input_files.parse_json(data, f"evidence {full}", ApprovalError), len(data)


def load_evidence(path):
    """Envelopes of an evidence bundle: a folder of ``*.json`` files, or one JSON file holding an
    envelope, a list of envelopes, or ``{"envelopes": [...]}``. Each gets a ``_source`` key.

    Bounded (issue 11, Deliver 9): regular files only (a FIFO, device, folder or a symlink out of
    the folder is an invalid envelope naming it, never a hang), at most 16 MiB each and 64 MiB in
    all, JSON nested at most 64 levels."""
    path = input_files.check_path(path, "evidence", ApprovalError, fix=_EVIDENCE_FIX)
    if not os.path.lexists(path):
        raise ApprovalError(f"evidence {path} does not exist{_EVIDENCE_FIX}")
    folder = os.path.realpath(path) if os.path.isdir(path) else None
    envelopes, total = [], 0
    for full, name in _evidence_files(path):
        try:
            data, size = _read_evidence_file(full, folder)
        except ApprovalError as exc:
            if folder is None and not os.path.isfile(full):
                raise  # the evidence path itself is a FIFO, a device, ...: refused as a whole
            envelopes.append({"_invalid": str(exc), "_source": name})
            continue
        total += size
        if total > MAX_EVIDENCE_FOLDER_BYTES:
            raise ApprovalError(f"evidence folder {path} holds more than {MAX_EVIDENCE_FOLDER_BYTES // input_files.MiB} MiB "
                                f"of *.json files: keep only the approvals of the change there{_EVIDENCE_FIX}")
        envelopes.extend(_envelopes_in(data, name))
    return envelopes


# ---- verified approvals and the report ------------------------------------------------------

@dataclass(frozen=True)
class Approval:  # pylint: disable=too-many-instance-attributes
    """One verified approval. Attribute access, and ``a["stage"]`` / ``a.get("reason")`` too."""
    stage: str
    role: str
    person: str
    key_id: str
    issued_at: object
    not_before: object
    not_after: object
    nonce: str
    change_id: str
    decision: str = "approve"
    reason: str = None
    planned_start: object = None
    plan_digest: str = None
    source: str = None

    def __getitem__(self, name):
        return getattr(self, name)

    def get(self, name, default=None):
        return getattr(self, name, default)

    def as_dict(self):
        out = {}
        for name in ("stage", "role", "person", "key_id", "issued_at", "not_before", "not_after", "nonce",
                     "change_id", "decision", "reason", "planned_start", "plan_digest", "source"):
            value = getattr(self, name)
            out[name] = value.isoformat() if hasattr(value, "isoformat") else value
        return out


@dataclass
class TeamReport:
    """What a set of approvals counted, what is wrong with it, and who performs the change (Art. 27):
    the part the gate's report and the break-glass report share."""
    counted: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    implementers: list = field(default_factory=list)
    supervisor: str = None
    launcher: str = None

    @property
    def ok(self):
        return not self.problems


@dataclass
class EvidenceReport(TeamReport):  # pylint: disable=too-many-instance-attributes
    """What the evidence of a change satisfies. ``required_stages``: the change's whole path;
    ``performed_stage``: the stage this run performs (``trial_run``, or the path's last step for
    the whole change); ``checked_stages``: the stages this run needs, all satisfied when ``ok``;
    ``pending_stages``: the stages after the run (empty for the whole change)."""
    required_stages: list = field(default_factory=list)
    performed_stage: str = None
    checked_stages: list = field(default_factory=list)
    pending_stages: list = field(default_factory=list)
    valid: list = field(default_factory=list)
    envelope_problems: list = field(default_factory=list)
    rows: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems and bool(self.checked_stages)


def normalise_binding(binding):
    b = dict(binding)
    for name in ("change_id", "system", "environment", "change_type"):
        if not b.get(name):
            raise ApprovalError(f"the run does not say its {name}; set prodgate_{name} (or the gate's {name} option)")
    b["artifacts"] = sorted({artifact_digest(a) for a in b.get("artifacts") or []})
    b["targets"] = sorted({str(t) for t in b.get("targets") or []})
    if b.get("plan_digest"):
        b["plan_digest"] = artifact_digest(b["plan_digest"])
    return b


def _targets_covered(wanted, allowed):
    """Hosts of ``wanted`` (a set) not covered by ``allowed`` (names or glob patterns)."""
    rest = wanted.difference(allowed)
    if rest:
        patterns = [t for t in allowed if "*" in t or "?" in t or "[" in t]
        if patterns:
            rest = {h for h in rest if not any(fnmatch.fnmatchcase(h, p) for p in patterns)}
    return rest


def verify_envelope(policy, envelope, binding, now):  # pylint: disable=too-many-return-statements,too-many-branches
    """(Approval or None, problem string or None) for one envelope. ``binding`` must be normalised."""
    source = envelope.get("_source", "envelope") if isinstance(envelope, dict) else "envelope"
    where = f"evidence {source}"
    if "_invalid" in envelope:
        return None, f"{where}: not a DSSE envelope ({envelope['_invalid']}); replace it with the file `prodgate approve` wrote"
    try:
        payload_type, payload, sigs = dsse.parse_envelope(envelope)
    except ValueError as exc:
        return None, f"{where}: malformed DSSE envelope ({exc}); replace it with the file `prodgate approve` wrote"
    if payload_type != dsse.INTOTO_PAYLOAD_TYPE:
        return None, f"{where}: payloadType {payload_type!r} is not {dsse.INTOTO_PAYLOAD_TYPE}; only prodgate approvals are evidence"
    known = [(kid, sig, policy.keys[kid]) for kid, sig in sigs if kid in policy.keys]
    if not known:
        kids = ", ".join(kid[:16] for kid, dummy in sigs)
        return None, (f"{where}: signed by unknown key {kids}; the key is not in the policy's people, "
                      "add the signer's public key to the policy (and re-sign it) or use a listed key")
    good = [pk for kid, sig, pk in known if dsse.verify_signature(pk.public_key, payload_type, payload, sig)]
    if not good:
        return None, (f"{where}: signature does not verify (forged or altered after signing) for key "
                      f"{known[0][0][:16]} of {known[0][2].person}; ask the approver to sign again with `prodgate approve`")
    key = good[0]
    if key.revoked:
        return None, (f"{where}: key {key.keyid[:16]} of {key.person} is revoked in the policy; "
                      f"{key.person} must sign again with a current key")
    try:
        statement = input_files.parse_json(payload, "signed payload", ApprovalError)
    except ApprovalError as exc:
        return None, f"{where}: {exc}; re-sign with `prodgate approve`"
    try:
        return _check_statement(policy, statement, binding, now, key, where, source)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return None, f"{where}: statement is malformed ({exc}); re-sign with `prodgate approve`"


def _check_statement(policy, statement, binding, now, key, where, source):  # pylint: disable=too-many-locals,too-many-return-statements,too-many-branches
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        return None, f"{where}: payload is not an in-toto Statement v1; re-sign with `prodgate approve`"
    if statement.get("predicateType") != PREDICATE_TYPE:
        return None, f"{where}: predicateType {statement.get('predicateType')!r} is not {PREDICATE_TYPE}"
    pred = statement["predicate"]
    if not isinstance(pred, dict):
        raise ValueError("predicate is not an object")
    person, role, stage = pred["person"], pred["role"], pred["stage"]
    who = f"{where} ({stage} by {person} as {role})"
    if person != key.person:
        return None, f"{who}: signed with a key of {key.person}, not of {person}; each person signs with their own key"
    holder = policy.people.get(person, {})
    if role not in holder.get("roles", []):
        return None, f"{who}: {person} does not hold role {role} in the policy; sign with a role you hold"
    if stage not in policy.rules["stages"]:
        return None, f"{who}: unknown stage {stage!r}; use one of [{', '.join(policy.rules['stages'])}]"
    if role not in policy.stage_roles(stage):
        return None, f"{who}: role {role} does not sign stage {stage} (it is signed by {policy.stage_roles(stage)})"
    for name in BINDING_FIELDS:
        if pred.get(name) != binding.get(name):
            return None, (f"{who}: approves {name} {pred.get(name)!r} but this run is {name} {binding.get(name)!r}; "
                          "an approval is valid only for the change it names")
    digests = set()
    for subj in statement["subject"]:
        digests.add(str(subj["digest"]["sha256"]).lower())
    missing = [d for d in binding["artifacts"] if d not in digests]
    if missing:
        return None, (f"{who}: does not approve artifact sha256:{missing[0]} that this run deploys "
                      f"(approved: {', '.join('sha256:' + d[:16] for d in sorted(digests))}); "
                      "check prodgate_artifacts or have the release re-approved")
    if binding.get("plan_digest"):
        got = (pred.get("plan_digest") or {}).get("sha256")
        if got != binding["plan_digest"]:
            return None, f"{who}: approves plan sha256:{str(got)[:16]} but this run's plan is sha256:{binding['plan_digest'][:16]}"
    targets = pred["targets"]
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ValueError("targets is not a list of host names")
    uncovered = _targets_covered(binding["_target_set"], targets)
    if uncovered:
        sample = ", ".join(sorted(uncovered)[:5])
        return None, f"{who}: does not cover target host(s) {sample} ({len(uncovered)} in all); approve the run's targets or --limit the run"
    issued = parse_time(pred["issued_at"], "issued_at")
    not_before = parse_time(pred["not_before"], "not_before")
    not_after = parse_time(pred["not_after"], "not_after")
    if now < not_before:
        return None, f"{who}: not valid before {pred['not_before']} (now {now.isoformat(timespec='seconds')}); wait or re-sign"
    if now >= not_after:
        return None, f"{who}: expired at {pred['not_after']}; ask {person} to sign a new approval"
    if issued > now + CLOCK_SKEW or issued > not_after:
        return None, f"{who}: issued_at {pred['issued_at']} is in the future or after not_after; re-sign with a correct clock"
    nonce = pred["nonce"]
    if not isinstance(nonce, str) or not NONCE_RE.match(nonce):
        return None, f"{who}: nonce {nonce!r} is not 16-128 characters of [A-Za-z0-9_-]; re-sign with `prodgate approve`"
    decision = pred.get("decision", "approve")
    if decision not in ("approve", "reject"):
        return None, f"{who}: decision {decision!r} is neither approve nor reject"
    reason = pred.get("reason")
    if stage == EMERGENCY_STAGE:
        if not isinstance(reason, str) or not reason.strip():
            return None, f"{who}: an emergency override needs a reason; re-sign with --reason"
        hours = policy.emergency.get("max_validity_hours", 24)
        if not_after - not_before > timedelta(hours=hours):
            return None, f"{who}: an emergency override may be valid for at most {hours} hours; re-sign with a shorter window"
    planned = pred.get("planned_start")
    approval = Approval(
        stage=stage, role=role, person=person, key_id=key.keyid, issued_at=issued, not_before=not_before,
        not_after=not_after, nonce=nonce, change_id=pred["change_id"], decision=decision, reason=reason,
        planned_start=parse_time(planned, "planned_start") if planned else None,
        plan_digest=(pred.get("plan_digest") or {}).get("sha256"), source=source)
    return approval, None
