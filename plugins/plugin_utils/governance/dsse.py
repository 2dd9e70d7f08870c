"""Ed25519 keys and DSSE envelopes (Dead Simple Signing Envelope, v1), through `cryptography` only.

An approval is one DSSE envelope over an in-toto Statement (see ``approvals.py``); the policy
file is signed with the same pre-authentication encoding under its own payload type, so a
signature made for one can never be replayed as the other.

Key ids are the sha256 of the raw 32-byte Ed25519 public key, in hex. Public keys are written
as 64 hex characters, which is also securesystemslib's ``keyval.public`` form for ed25519.
"""
import base64
import binascii
import hashlib
import os

import yaml

from .. import input_files
from ..errors import ApprovalError, ProdgateError

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    CRYPTOGRAPHY_ERROR = None
except ImportError as exc:  # reported when a key or signature is first used, not at import
    CRYPTOGRAPHY_ERROR = exc
    InvalidSignature = Ed25519PrivateKey = Ed25519PublicKey = serialization = None


def _require_cryptography():
    if CRYPTOGRAPHY_ERROR is not None:
        raise ProdgateError(f"the Python package `cryptography` is needed on the controller for signatures "
                            f"({CRYPTOGRAPHY_ERROR}); install it, e.g. `pip install cryptography`")


INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type, payload):
    """DSSE pre-authentication encoding: what is actually signed."""
    ptype = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(ptype), ptype, len(payload), payload)


def b64decode(text):
    """DSSE allows standard or URL-safe base64, with or without padding."""
    if not isinstance(text, str):
        raise ValueError("not a base64 string")
    padded = text + "=" * (-len(text) % 4)
    alt = "-_" if ("-" in text or "_" in text) else None
    try:
        if alt:
            return base64.b64decode(padded, altchars=b"-_", validate=True)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def b64encode(data):
    return base64.b64encode(data).decode("ascii")


# ---- keys -----------------------------------------------------------------------------------

def public_key_hex(public_key):
    _require_cryptography()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def keyid_of(public_hex):
    """Key id of a public key given as 64 hex characters."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()


def parse_public_key(public_hex, where="public key"):
    _require_cryptography()
    try:
        raw = bytes.fromhex(public_hex)
        if len(raw) != 32:
            raise ValueError("length")
        return Ed25519PublicKey.from_public_bytes(raw)
    except (TypeError, ValueError):
        raise ApprovalError(
            f"{where}: {public_hex!r} is not an Ed25519 public key (64 hex characters); "
            "copy the `public_key` printed by `prodgate keys generate`") from None


def generate_private_key():
    _require_cryptography()
    return Ed25519PrivateKey.generate()


def private_key_pem(private_key, passphrase=None):
    _require_cryptography()
    enc = (serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase
           else serialization.NoEncryption())
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def write_private_key(path, private_key, passphrase=None, force=False):
    """Write the key PEM with mode 0600 from the first byte (never world-readable, even briefly).
    An existing file is replaced only with ``force``; a missing folder is named."""
    with input_files.create_file(path, "private key", ProdgateError, force=force, mode=0o600) as handle:
        handle.write(private_key_pem(private_key, passphrase))
    os.chmod(path, 0o600)


def write_key_pair(path, private_key, passphrase=None, force=False):
    """The private key at ``path`` (0600) and its public key (64 hex characters) at ``path.pub``.
    Neither file replaces an existing one without ``force``; on a refusal nothing is left behind,
    and a forced replacement replaces both files or neither (no private key without its public half)."""
    public = public_key_hex(private_key.public_key())
    created = not os.path.lexists(path)
    try:
        with input_files.create_file(path, "private key", ProdgateError, force=force, mode=0o600) as handle, \
                input_files.create_file(path + ".pub", "public key", ProdgateError, force=force) as pub:
            handle.write(private_key_pem(private_key, passphrase))
            pub.write((public + "\n").encode("ascii"))
    except Exception:
        if created and os.path.lexists(path):
            os.unlink(path)  # the key this call created
        raise
    os.chmod(path, 0o600)
    return public


def read_key_file(path, what="key file"):
    """The bytes of a key file: a regular file of at most 64 KiB (not a FIFO or /dev/zero)."""
    return input_files.read_file(path, what, ProdgateError, limit=input_files.MAX_KEY_BYTES,
                                 fix="; give the key file `prodgate keys generate` wrote")


def load_private_key(path, passphrase=None):
    _require_cryptography()
    data = read_key_file(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase.encode("utf-8") if passphrase else None)
    except TypeError:
        raise ProdgateError(f"private key {path} is encrypted: give its passphrase (--passphrase-env VAR or --ask-passphrase)") from None
    except ValueError:
        raise ProdgateError(f"private key {path} cannot be loaded: wrong passphrase or not a PEM private key; give the "
                            "key file `prodgate keys generate` wrote (and its passphrase, if it has one)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ProdgateError(f"private key {path} is not Ed25519; create one with `prodgate keys generate`")
    return key


# ---- envelopes ------------------------------------------------------------------------------

def sign_envelope(payload, private_key, payload_type=INTOTO_PAYLOAD_TYPE):
    """Return a DSSE envelope dict with one signature by ``private_key``."""
    _require_cryptography()
    keyid = keyid_of(public_key_hex(private_key.public_key()))
    sig = private_key.sign(pae(payload_type, payload))
    return {"payload": b64encode(payload), "payloadType": payload_type,
            "signatures": [{"keyid": keyid, "sig": b64encode(sig)}]}


def add_signature(doc, private_key, payload_type, payload):
    """Add (or replace) ``private_key``'s signature in ``doc["signatures"]``, made over the PAE of
    ``payload`` under ``payload_type``: the detached form of the signed YAML documents (the policy,
    calendar packs). Returns the key id."""
    _require_cryptography()
    keyid = keyid_of(public_key_hex(private_key.public_key()))
    sig = b64encode(private_key.sign(pae(payload_type, payload)))
    sigs = [s for s in (doc.get("signatures") or []) if isinstance(s, dict) and s.get("keyid") != keyid]
    sigs.append({"keyid": keyid, "sig": sig})
    doc["signatures"] = sigs
    return keyid


def dump_signed(body, signatures, header=""):
    """YAML text of a signed document: ``header``, the body in its own key order, the signatures last."""
    text = header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120)
    if signatures:
        text += yaml.safe_dump({"signatures": signatures}, sort_keys=False, width=200)
    return text


def verify_signature(public_key, payload_type, payload, sig):
    _require_cryptography()
    try:
        public_key.verify(sig, pae(payload_type, payload))
        return True
    except InvalidSignature:
        return False


def parse_envelope(envelope):
    """Structural check of a DSSE envelope; returns (payload_type, payload bytes, [(keyid, sig bytes)]).

    Raises ValueError with a short reason when the envelope is malformed.
    """
    if not isinstance(envelope, dict):
        raise ValueError("not a JSON object")
    for field in ("payload", "payloadType", "signatures"):
        if field not in envelope:
            raise ValueError(f"missing field {field!r}")
    payload_type = envelope["payloadType"]
    if not isinstance(payload_type, str):
        raise ValueError("payloadType is not a string")
    payload = b64decode(envelope["payload"])
    sigs = envelope["signatures"]
    if not isinstance(sigs, list) or not sigs:
        raise ValueError("signatures is not a non-empty list")
    out = []
    for i, entry in enumerate(sigs):
        if not isinstance(entry, dict) or not isinstance(entry.get("sig"), str):
            raise ValueError(f"signatures[{i}] has no sig")
        keyid = entry.get("keyid", "")
        if not isinstance(keyid, str):
            raise ValueError(f"signatures[{i}].keyid is not a string")
        out.append((keyid, b64decode(entry["sig"])))
    return payload_type, payload, out
