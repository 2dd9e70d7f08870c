"""One file with everything an auditor needs to check a change alone (issue 13, Art. 27).

The bundle is JSON lines, each line one *part* in canonical JSON (sorted keys, no spaces), so a
changed byte anywhere is found, and the message names the part it is in:

1. ``header``: format, change id, register id, how many parts of each kind follow;
2. ``policy``: the signed policy file, verbatim (its governance signatures are checked);
3. ``approval`` (one per envelope): the change's signed approvals, as DSSE envelopes (checked
   against the people's keys in the policy; every approval the register says the gate consumed
   must be among them);
4. ``entry`` (one per register entry of the change's runs): the entry's body with its RFC 6962
   inclusion proof against the checkpoint;
5. ``checkpoint``: the signed checkpoint whose Merkle root the proofs lead to (checked against
   the register signing key the auditor trusts).

:func:`verify_bundle` needs only the file and the trusted public key: no database, no network.
"""
import hashlib
import json
import os

from ..governance import dsse
from ..errors import PolicyError, ProdgateError
from ..governance.policy import build_policy, load_root, verify_signatures
from .chain import signature_ok
from .merkle import inclusion_proof, leaf_hash, tree_hash, verify_inclusion

FORMAT = "prodgate-evidence/1"


class EvidenceBundleError(ProdgateError):
    """The bundle cannot be built or does not verify."""


def _line(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _run_ids(store, change_id):
    runs = set()
    for _seq, text in store.bodies(like='%"kind":"run_%'):
        body = json.loads(text)
        if body.get("kind") in ("run_open", "run_change") and (body.get("change") or {}).get("id") == change_id:
            runs.add(body.get("run"))
    return runs


def build_bundle(store, change_id, policy_path, evidence_envelopes):
    """The bundle's text. ``evidence_envelopes``: envelope dicts (``approvals.load_evidence``)."""
    runs = _run_ids(store, change_id)
    if not runs:
        raise EvidenceBundleError(f"no run of change {change_id!r} in the register: was -e prodgate_change_id="
                                  f"{change_id} passed?")
    cp_row = None
    for row in store.last_checkpoint_rows(50):
        body = json.loads(row[3])
        if body.get("kind") == "checkpoint" and body.get("root"):
            cp_row = row
            break
    if cp_row is None:
        raise EvidenceBundleError("the register has no checkpoint with a Merkle root yet (checkpoints before issue 13 "
                                  "sign the chain head only): run any playbook with the callback, then export again")
    checkpoint = json.loads(cp_row[3])
    size = checkpoint["count"]
    leaves, wanted = [], []
    for seq, _prev, _hash, body in store.iter_rows(end=size):
        leaves.append(leaf_hash(body))
        if '"run":' in body and json.loads(body).get("run") in runs:
            wanted.append((seq, body))
    if len(leaves) != size or tree_hash(leaves).hex() != checkpoint["root"]:
        raise EvidenceBundleError(f"the register's first {size} entries do not match checkpoint entry {cp_row[0]}'s "
                                  "Merkle root: run `prodgate register verify` before exporting")
    if not wanted:
        raise EvidenceBundleError(f"change {change_id!r} has no entry covered by the last checkpoint yet (entry "
                                  f"{cp_row[0]}): export after its run has ended")
    try:
        with open(policy_path, encoding="utf-8") as fh:
            policy_text = fh.read()
    except OSError as exc:
        raise EvidenceBundleError(f"policy {policy_path} cannot be read: {exc.strerror}") from None
    envelopes = [{k: v for k, v in e.items() if not k.startswith("_")} for e in evidence_envelopes
                 if _statement_change(e) == change_id]
    lines = [_line({"part": "policy", "file": os.path.basename(policy_path), "text": policy_text})]
    lines += [_line({"part": "approval", "envelope": e}) for e in envelopes]
    lines += [_line({"part": "entry", "seq": seq, "body": body,
                     "proof": [p.hex() for p in inclusion_proof(leaves, seq - 1)]}) for seq, body in wanted]
    lines.append(_line({"part": "checkpoint", "seq": cp_row[0], "checkpoint": checkpoint}))
    # The digests catch a changed byte that means nothing to the signatures (YAML layout in the
    # policy text); the signatures and proofs catch a consistent rewrite of part and digest.
    header = _line({"part": "header", "format": FORMAT, "change_id": change_id, "register_id": checkpoint["register_id"],
                    "parts": {"policy": 1, "approval": len(envelopes), "entry": len(wanted), "checkpoint": 1},
                    "line_sha256": [hashlib.sha256(x.encode("utf-8")).hexdigest() for x in lines]})
    counts = {"approvals": len(envelopes), "entries": len(wanted), "checkpoint": cp_row[0], "tree_size": size}
    return "\n".join([header] + lines) + "\n", counts


def _statement_change(envelope):
    try:
        _ptype, payload, _sigs = dsse.parse_envelope(envelope)
        return (json.loads(payload).get("predicate") or {}).get("change_id")
    except (ValueError, TypeError, AttributeError):
        return None


def _name(part, n):
    if part.get("part") == "entry":
        return f"line {n}: register entry {part.get('seq')}"
    if part.get("part") == "approval":
        return f"line {n}: approval"
    return f"line {n}: {part.get('part')}"


def _parse_lines(text):
    """[(line number, part dict)], problems, raw lines; a damaged line is reported with the part it seems to be."""
    problems, parts = [], []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    else:
        problems.append(f"line {len(lines)}: the file does not end with a newline: it was cut or altered")
    for n, raw in enumerate(lines, 1):
        try:
            part = json.loads(raw)
        except ValueError as exc:
            problems.append(f"line {n} ({_guess(raw, n)}) is damaged: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(part, dict) or "part" not in part:
            problems.append(f"line {n} ({_guess(raw, n)}) is damaged: not a bundle part")
            continue
        if _line(part) != raw:
            problems.append(f"{_name(part, n)} was altered: it is not byte for byte as exported")
        parts.append((n, part))
    return parts, problems, lines


def _guess(raw, n):
    for kind in ("header", "policy", "approval", "entry", "checkpoint"):
        if f'"part":"{kind}"' in raw:
            return kind if kind != "entry" else "a register entry"
    return "header" if n == 1 else "unknown part"


def verify_bundle(text, trusted_keys, policy_root=None):
    """Check a bundle offline. ``trusted_keys``: register key id -> public key (``load_public_keys``).

    Returns a report dict: ``ok``, ``problems`` (each naming its line and part), and what was checked.
    """
    parts, problems, lines = _parse_lines(text)
    by_kind = {}
    for n, part in parts:
        by_kind.setdefault(part["part"], []).append((n, part))
    report = {"ok": False, "problems": problems, "change_id": None, "entries": 0, "approvals": [], "checkpoint": None}
    header = (by_kind.get("header") or [(None, None)])[0][1]
    if header is None:
        problems.append("line 1: the header is missing")
        return report
    if header.get("format") != FORMAT:
        problems.append(f"line 1: header: format {header.get('format')!r} is not {FORMAT}")
    change_id = report["change_id"] = header.get("change_id")
    digests = header.get("line_sha256") or []
    if len(digests) != len(lines) - 1:
        problems.append(f"header: it lists {len(digests)} line digest(s), the file has {len(lines) - 1} lines after it")
    for n, (raw, want) in enumerate(zip(lines[1:], digests), 2):
        if hashlib.sha256(raw.encode("utf-8")).hexdigest() != want:
            problems.append(f"line {n} ({_guess(raw, n)}) does not match its digest in the header: the line (or the "
                            "header) was altered")
    for kind in ("policy", "approval", "entry", "checkpoint"):
        want, got = (header.get("parts") or {}).get(kind), len(by_kind.get(kind, []))
        if want != got:
            problems.append(f"header: it lists {want} {kind} part(s), the file holds {got}: parts were added or removed")

    # the checkpoint: signed by a trusted register key
    cp = None
    for n, part in by_kind.get("checkpoint", [])[:1]:
        cp = part.get("checkpoint") or {}
        report["checkpoint"] = {"seq": part.get("seq"), "count": cp.get("count"), "key_id": cp.get("key_id"),
                                "root": cp.get("root"), "ts": cp.get("ts")}
        if not cp.get("root") or not signature_ok(cp):
            problems.append(f"line {n}: checkpoint: its signature does not verify: the checkpoint was altered")
            cp = None
        elif cp.get("key_id") not in trusted_keys or trusted_keys[cp["key_id"]] != cp.get("public_key"):
            problems.append(f"line {n}: checkpoint: signed by key {cp.get('key_id')}, which is not the trusted "
                            f"register key ({', '.join(sorted(trusted_keys)) or 'none given'})")
            cp = None
        elif cp.get("register_id") != header.get("register_id"):
            problems.append(f"line {n}: checkpoint: it belongs to register {cp.get('register_id')}, the header names "
                            f"{header.get('register_id')}")
    # the entries: each proven to be in the signed tree, and each of this change's runs
    runs, gate_nonces = set(), {}
    for n, part in by_kind.get("entry", []):
        body = part.get("body")
        seq = part.get("seq")
        try:
            proof = [bytes.fromhex(p) for p in part.get("proof") or []]
            data = json.loads(body)
        except (ValueError, TypeError):
            problems.append(f"{_name(part, n)}: its body or proof is damaged")
            continue
        if cp is not None and not (isinstance(seq, int)
                                   and verify_inclusion(leaf_hash(body), seq - 1, cp["count"], proof,
                                                        bytes.fromhex(cp["root"]))):
            what = " ".join(str(x) for x in (data.get("kind"), data.get("host"), data.get("task")) if x)
            problems.append(f"{_name(part, n)} ({what}): not in the signed register: its content, position or proof was altered")
            continue
        if data.get("kind") == "run_open":
            if (data.get("change") or {}).get("id") != change_id:
                problems.append(f"{_name(part, n)}: run {data.get('run')} is of change "
                                f"{(data.get('change') or {}).get('id')}, not {change_id}")
            runs.add(data.get("run"))
        for a in ((data.get("evidence") or {}).get("approvals") or []) if isinstance(data.get("evidence"), dict) else []:
            if isinstance(a, dict) and a.get("nonce"):
                gate_nonces[a["nonce"]] = (n, data.get("seq") or seq, a)
        report["entries"] += 1
    for n, part in by_kind.get("entry", []):
        try:
            run = json.loads(part.get("body")).get("run")
        except (ValueError, TypeError):
            continue
        if run not in runs:
            problems.append(f"{_name(part, n)}: belongs to run {run}, which is not a run of change {change_id}")
    # the policy: signed by its governance keys (or a pinned root)
    policy = None
    for n, part in by_kind.get("policy", [])[:1]:
        try:
            import yaml  # pylint: disable=import-outside-toplevel
            doc = yaml.safe_load(part.get("text") or "")
            governance = load_root(policy_root) if policy_root else (doc or {}).get("governance")
            signed_by = verify_signatures(doc, governance, f"bundle line {n}")
            policy = build_policy(doc, f"bundle line {n}", signed_by, pinned=bool(policy_root))
            report["policy"] = {"version": doc.get("version"), "signed_by": signed_by, "pinned": bool(policy_root)}
        except (PolicyError, ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"line {n}: policy: {exc}")
        except Exception as exc:  # pylint: disable=broad-except  # a YAML error from a damaged text
            problems.append(f"line {n}: policy: the text is damaged ({type(exc).__name__})")
    # the approvals: DSSE signatures by keys of people in the policy, for this change
    seen_nonces = set()
    for n, part in by_kind.get("approval", []):
        env = part.get("envelope")
        try:
            ptype, payload, sigs = dsse.parse_envelope(env)
            statement = json.loads(payload)
            pred = statement.get("predicate") or {}
        except (ValueError, TypeError, AttributeError) as exc:
            problems.append(f"line {n}: approval: the envelope is damaged ({exc})")
            continue
        who = f"line {n}: approval of {pred.get('person')} ({pred.get('stage')}/{pred.get('role')})"
        if policy is not None:
            ok = False
            for keyid, sig in sigs:
                key = policy.keys.get(keyid)
                if key is not None and dsse.verify_signature(key.public_key, ptype, payload, sig):
                    ok = key.person == pred.get("person")
            if not ok:
                problems.append(f"{who}: its signature does not verify with {pred.get('person')}'s key in the policy: "
                                "the approval was altered")
                continue
        if pred.get("change_id") != change_id:
            problems.append(f"{who}: it approves change {pred.get('change_id')}, not {change_id}")
        seen_nonces.add(pred.get("nonce"))
        report["approvals"].append({k: pred.get(k) for k in ("stage", "role", "person", "issued_at", "nonce")})
    for nonce, (n, _seq, a) in sorted(gate_nonces.items()):
        if nonce not in seen_nonces:
            problems.append(f"line {n}: the gate consumed the approval of {a.get('person')} ({a.get('stage')}/"
                            f"{a.get('role')}, nonce {nonce}), but its signed envelope is not in the bundle")
    report["ok"] = not problems
    return report
