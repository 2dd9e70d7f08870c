"""Signed records that are not approvals: the Art. 20(7) MLPS filing and the Art. 23-24 failure
analysis. Each is a DSSE envelope, signed like an approval by a person whose key is in the signed
policy, under its own payload type so it can never be replayed as an approval (or the reverse).
"""
import json
import os
from datetime import datetime, timezone

from ..governance import dsse
from ..errors import ProdgateError

RECORD_PAYLOAD_TYPE = "application/vnd.prodgate.record+json"

# kind -> (required fields, roles allowed to sign it (None: anyone in the policy), article)
KINDS = {
    "mlps_filing": (("system", "filed_on", "reference"), None, "Art. 20(7)"),
    "failure_analysis": (("change_id", "cause", "action", "owner"), ("it_pm",), "Art. 23-24"),
    # what no code can check (the articles of EVIDENCE_CHECKLIST): someone attests the evidence exists
    "evidence": (("system", "article", "evidence"), None, "Art. 11, 13-15, 21, 29-30"),
}


class RecordError(ProdgateError):
    """A record cannot be made or read."""


def make_record(kind, person, fields, signed_at=None):
    if kind not in KINDS:
        raise RecordError(f"unknown record kind {kind!r}: one of {', '.join(KINDS)}")
    missing = [f for f in KINDS[kind][0] if not str(fields.get(f) or "").strip()]
    if missing:
        raise RecordError(f"a {kind} record needs {', '.join(missing)}")
    record = {"kind": kind, "person": person,
              "signed_at": (signed_at or datetime.now(timezone.utc)).isoformat(timespec="seconds")}
    record.update({k: v for k, v in fields.items() if v is not None})
    return record


def sign_record(record, private_key):
    payload = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return dsse.sign_envelope(payload, private_key, RECORD_PAYLOAD_TYPE)


def load_records(folder):
    """Envelopes of ``*.json`` files in ``folder`` (none when it does not exist)."""
    out = []
    if not folder or not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            path = os.path.join(folder, name)
            try:
                with open(path, encoding="utf-8") as fh:
                    out.append(dict(json.load(fh), _source=path))
            except (OSError, ValueError) as exc:
                out.append({"_invalid": str(exc), "_source": path})
    return out


def signer(policy, envelope, payload_type):
    """(person id, key id, payload dict) when one signature verifies with a non-revoked policy key."""
    ptype, payload, sigs = dsse.parse_envelope(envelope)
    if ptype != payload_type:
        raise ValueError(f"payload type {ptype}, expected {payload_type}")
    for keyid, sig in sigs:
        key = policy.keys.get(keyid)
        if key is not None and not key.revoked and dsse.verify_signature(key.public_key, ptype, payload, sig):
            return key.person, keyid, json.loads(payload)
    raise ValueError("no signature verifies with a current key of a person in the signed policy")


def verify_records(policy, envelopes):
    """([record dict + signer, key_id, source], [problem]) of the envelopes that verify."""
    good, problems = [], []
    for env in envelopes:
        source = env.get("_source", "?")
        if "_invalid" in env:
            problems.append(f"{source}: not JSON ({env['_invalid']})")
            continue
        try:
            person, keyid, record = signer(policy, env, RECORD_PAYLOAD_TYPE)
        except (ValueError, TypeError) as exc:
            problems.append(f"{source}: {exc}")
            continue
        kind = record.get("kind")
        if kind not in KINDS:
            problems.append(f"{source}: unknown record kind {kind!r}")
            continue
        if record.get("person") != person:
            problems.append(f"{source}: signed by {person}, but the record names {record.get('person')}")
            continue
        roles = KINDS[kind][1]
        held = (policy.people.get(person) or {}).get("roles") or []
        if roles and not set(roles) & set(held):
            problems.append(f"{source}: a {kind} must be signed by {' or '.join(roles)}; {person} holds {', '.join(held)}")
            continue
        good.append(dict(record, signer=person, key_id=keyid, source=source))
    return good, problems
