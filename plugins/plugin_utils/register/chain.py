"""Change register: the hash chain, signed checkpoints and verification (tamper evidence).

Entry ``n`` stores ``hash_n = sha256(bytes(hash_{n-1}) || canonical_json(entry_n))`` with
``hash_0 = 00..00``. A checkpoint entry signs ``(register id, count, head hash)`` with Ed25519;
the latest checkpoint is also written to an anchor file outside the database, so a truncated
tail (which takes the in-database checkpoints with it) is still detected.
"""
import base64
import hashlib
import json
import os

from ..base import utc_stamp
from ..errors import RegisterError
from .merkle import Frontier

GENESIS = "0" * 64
CHECKPOINT_ORIGIN = "prodgate.deploy/change_register"
_CHECKPOINT_MARK = '"kind":"checkpoint"'


def entry_hash(prev_hash, body_text):
    return hashlib.sha256(bytes.fromhex(prev_hash) + body_text.encode("utf-8")).hexdigest()


def chain(prev_hash, body_texts):
    """Chain a list of canonical bodies onto ``prev_hash``: [(prev, hash, body), ...]."""
    out = []
    for body in body_texts:
        h = entry_hash(prev_hash, body)
        out.append((prev_hash, h, body))
        prev_hash = h
    return out


# -- keys and signatures -----------------------------------------------------------------------

def _ed25519():
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
        from cryptography.hazmat.primitives import serialization
    except ImportError as exc:  # pragma: no cover - cryptography is a declared dependency
        raise RegisterError("the change register needs the Python package 'cryptography' to sign checkpoints: "
                            "pip install cryptography") from exc
    return ed25519, serialization


def generate_key(path):
    """Create an Ed25519 signing key (PEM, mode 0600) and its public key next to it (.pub)."""
    ed25519, serialization = _ed25519()
    key = ed25519.Ed25519PrivateKey.generate()
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # Written whole under a temporary name, then linked into place: a controller starting at the same
    # moment sees no key or the whole key, never a half-written one; the link fails if one exists.
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
    with open(path + ".pub", "w", encoding="ascii") as fh:
        fh.write(public_key_b64(key) + "\n")
    return key


def load_key(path):
    ed25519, serialization = _ed25519()
    try:
        with open(path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
    except FileNotFoundError as exc:
        raise RegisterError(f"register signing key {path} does not exist: create it with "
                            f"`prodgate register keygen --key {path}`") from exc
    except (ValueError, TypeError) as exc:
        raise RegisterError(f"register signing key {path} is not a PEM Ed25519 private key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise RegisterError(f"register signing key {path} is not an Ed25519 key")
    return key


def public_key_b64(private_key):
    serialization = _ed25519()[1]
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(public_b64):
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def load_public_keys(paths):
    """Trusted public keys: files holding a base64 raw key (``.pub``) or a PEM private key.

    RegisterError, naming the file and the fix, for a file that cannot be read or holds no key."""
    keys = {}
    for path in paths or ():
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise RegisterError(f"trusted key {path} cannot be read ({exc.strerror}): give the .pub file of the "
                                "register's signing key, obtained from its owner") from None
        if b"PRIVATE KEY" in data:
            pub = public_key_b64(load_key(path))
        else:
            try:
                pub = data.decode("ascii").strip()
                if len(base64.b64decode(pub, validate=True)) != 32:
                    raise ValueError("not 32 bytes")
            except ValueError:  # UnicodeDecodeError and binascii.Error are ValueErrors
                raise RegisterError(f"trusted key {path} is not a register key: give the .pub file (one base64 line) "
                                    "or the PEM signing key written by `prodgate register keygen`") from None
        keys[key_id(pub)] = pub
    return keys


def checkpoint_message(register_id, count, head, root=None):
    # C2SP tlog-checkpoint style note body: origin, size, root; one line each. Checkpoints since
    # issue 13 also sign the Merkle tree hash of the first ``count`` entries (inclusion proofs).
    text = f"{CHECKPOINT_ORIGIN}/{register_id}\n{count}\n{head}\n"
    if root is not None:
        text += f"merkle {root}\n"
    return text.encode("ascii")


def make_checkpoint(private_key, register_id, count, head, run_id=None, ts=None, open_runs=None, frontier=None):
    """A signed checkpoint. ``open_runs`` (runs still open at it) is covered by the next checkpoint's
    signature through the chain; the pre-flight uses it to accept a concurrent run's later entries.
    ``frontier`` (a :class:`merkle.Frontier` of the first ``count`` entries) adds the signed
    Merkle ``root`` and the frontier the next checkpoint extends."""
    pub = public_key_b64(private_key)
    root = None
    if frontier is not None:
        if frontier.size != count:
            raise RegisterError(f"checkpoint of {count} entries with a Merkle frontier of {frontier.size}: a bug")
        root = frontier.root().hex()
    sig = private_key.sign(checkpoint_message(register_id, count, head, root))
    cp = {
        "kind": "checkpoint",
        "run": run_id,
        "ts": ts or utc_stamp(),
        "register_id": register_id,
        "count": count,
        "head": head,
        "key_id": key_id(pub),
        "public_key": pub,
        "signature": base64.b64encode(sig).decode("ascii"),
    }
    if open_runs is not None:
        cp["open_runs"] = list(open_runs)
    if root is not None:
        cp["root"] = root
        cp["merkle_frontier"] = frontier.to_json()
    return cp


def signature_ok(cp):
    ed25519 = _ed25519()[0]
    try:
        pub = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(cp["public_key"]))
        pub.verify(base64.b64decode(cp["signature"]),
                   checkpoint_message(cp["register_id"], cp["count"], cp["head"], cp.get("root")))
        return True
    except Exception:  # pylint: disable=broad-except  # any decoding or signature error is "bad"
        return False


# -- anchors -----------------------------------------------------------------------------------

def write_anchor(path, checkpoint, seq):
    """Keep the latest signed checkpoint outside the database (atomic replace, mode 0600)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    data = dict(checkpoint, seq=seq)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_anchor(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise RegisterError(f"register anchor {path} is not valid JSON ({exc}); restore it from your "
                            "checkpoint copies (SIEM, ticket) before verifying") from exc


# -- verification ------------------------------------------------------------------------------

class Problem(dict):
    """One finding: kind (altered, missing, inserted, reordered, truncated, bad_signature, ...), seq, message."""


def _problem(kind, seq, message):
    return Problem(kind=kind, seq=seq, message=message)


def verify_entries(rows, register_id, trusted_keys=None, anchors=(), lookup=None, max_problems=50):
    """Verify a stream of ``(seq, prev_hash, hash, body_text)`` rows in seq order.

    ``lookup(hash) -> seq`` (optional) is used only after a break, to tell an insertion from a
    reordering. ``trusted_keys`` maps key id -> public key; when given, checkpoints signed by any
    other key are reported. Returns a report dict; ``report["ok"]`` is the verdict.
    """
    problems = []
    expected_seq = 1
    prev = GENESIS
    checkpoints = 0
    last_cp = None
    count = 0
    sha = hashlib.sha256
    fromhex = bytes.fromhex
    tree = Frontier()

    def add(kind, seq, message):
        if len(problems) < max_problems:
            problems.append(_problem(kind, seq, message))

    for seq, stored_prev, stored_hash, body in rows:
        count += 1
        if seq != expected_seq:
            if seq > expected_seq:
                gap = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
                add("missing", expected_seq, f"entry {gap} is missing: the sequence jumps from {expected_seq - 1} to {seq}")
            else:
                add("reordered", seq, f"entry {seq} appears after entry {expected_seq - 1}: sequence out of order")
        if sha(fromhex(stored_prev) + body.encode("utf-8")).hexdigest() != stored_hash:
            add("altered", seq, f"entry {seq} was altered: its content no longer matches its hash")
        if stored_prev != prev and not (seq != expected_seq and seq > expected_seq):
            where = lookup(stored_prev) if lookup else None
            if stored_prev == GENESIS and seq != 1:
                add("inserted", seq, f"entry {seq} claims to be the first entry: a chain was spliced in at {seq}")
            elif where is None:
                add("altered", seq - 1, f"chain break before entry {seq}: it links to a predecessor that is not in the "
                                        f"register (entry {seq - 1} was altered and re-hashed, or an entry before {seq} was deleted)")
            elif where < seq - 1:
                span = f"{where + 1}" if where + 1 == seq - 1 else f"{where + 1}..{seq - 1}"
                add("inserted", where + 1, f"entry {span} was inserted: entry {seq} links to entry {where}")
            else:
                add("reordered", seq, f"entries were reordered: entry {seq} belongs after entry {where}")
        if _CHECKPOINT_MARK in body:
            cp = json.loads(body)
            if cp.get("kind") == "checkpoint":
                checkpoints += 1
                last_cp = (seq, cp)
                if cp.get("register_id") != register_id:
                    add("bad_checkpoint", seq, f"checkpoint {seq} belongs to register {cp.get('register_id')}, not {register_id}")
                elif cp.get("count") != seq - 1 or cp.get("head") != stored_prev:
                    add("bad_checkpoint", seq, f"checkpoint {seq} signs {cp.get('count')} entries with head "
                                               f"{str(cp.get('head'))[:12]}..., but the chain before it has {seq - 1} "
                                               f"entries with head {stored_prev[:12]}...: history before it was rewritten")
                elif not signature_ok(cp):
                    add("bad_signature", seq, f"checkpoint {seq} has a bad signature (key {cp.get('key_id')})")
                elif trusted_keys is not None and cp.get("key_id") not in trusted_keys:
                    add("untrusted_key", seq, f"checkpoint {seq} is signed by key {cp.get('key_id')}, which is not "
                                              f"trusted (pass its public key with --trusted-key)")
                elif cp.get("root") is not None and tree.size == seq - 1 and tree.root().hex() != cp["root"]:
                    add("bad_checkpoint", seq, f"checkpoint {seq} signs a Merkle root that the {seq - 1} entries "
                                               "before it do not have")
        tree.append(sha(b"\x00" + body.encode("utf-8")).digest())  # leaf_hash, inlined: verify's inner loop
        prev = stored_hash
        expected_seq = seq + 1

    head_seq = expected_seq - 1
    for anchor_name, anchor in anchors:
        if not anchor:
            continue
        a_seq = anchor.get("seq")
        if anchor.get("register_id") != register_id:
            add("anchor_mismatch", a_seq, f"{anchor_name} belongs to register {anchor.get('register_id')}, not {register_id}")
        elif not signature_ok(anchor):
            add("bad_signature", a_seq, f"{anchor_name} has a bad signature")
        elif trusted_keys is not None and anchor.get("key_id") not in trusted_keys:
            add("untrusted_key", a_seq, f"the checkpoint in {anchor_name} is signed by key {anchor.get('key_id')}, "
                                        "which is not trusted")
        elif a_seq is None or a_seq > head_seq:
            add("truncated", head_seq + 1, f"tail truncated: the signed checkpoint in {anchor_name} is entry {a_seq} "
                                           f"(covering {anchor.get('count')} entries) but the register ends at entry {head_seq}")
        elif lookup is not None and lookup(anchor.get("head")) != anchor.get("count"):
            add("truncated", anchor.get("count"), f"the signed checkpoint in {anchor_name} (entry {a_seq}, head "
                                                  f"{str(anchor.get('head'))[:12]}...) is not in the register's history: "
                                                  "the history it covers was replaced")
    unsigned_tail = head_seq - (last_cp[0] if last_cp else 0)
    return {
        "ok": not problems,
        "entries": count,
        "head_seq": head_seq,
        "head": prev if count else GENESIS,
        "checkpoints": checkpoints,
        "last_checkpoint": last_cp[0] if last_cp else None,
        "unsigned_tail": unsigned_tail,
        "problems": problems,
        "first_problem": problems[0] if problems else None,
    }
