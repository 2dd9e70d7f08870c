"""governance/dsse.py: Ed25519 keys and DSSE envelopes. An approval or a policy is believed only when
its signature verifies over the exact bytes signed, under the payload type it was signed for, by the
key named; anything else is refused, and a malformed envelope says what is wrong."""
import base64
import hashlib
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key as ec_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError, ProdgateError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse

POLICY_TYPE = "application/vnd.prodgate.policy+yaml"
STATEMENT = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "CHG-1001"}]}).encode()


@pytest.fixture(name="key")
def fixture_key():
    return dsse.generate_private_key()


def verify(envelope, public_key):
    """What a verifier does: parse the envelope, then check each signature over the decoded payload."""
    payload_type, payload, sigs = dsse.parse_envelope(envelope)
    return [dsse.verify_signature(public_key, payload_type, payload, sig) for _keyid, sig in sigs]


def flip(text, index):
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


# ---- PAE ----------------------------------------------------------------------------------------

def test_pae_is_the_dsse_v1_encoding():
    """The test vector of the DSSE specification (protocol.md)."""
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_counts_bytes_not_characters():
    assert dsse.pae("application/审批", "批".encode()) == b"DSSEv1 18 application/\xe5\xae\xa1\xe6\x89\xb9 3 \xe6\x89\xb9"
    assert dsse.pae("t", b"") == b"DSSEv1 1 t 0 "


def test_pae_separates_type_and_payload_unambiguously():
    """Moving bytes between the type and the payload changes what is signed."""
    assert dsse.pae("a b", b"c") != dsse.pae("a", b"b c")


# ---- sign and verify ------------------------------------------------------------------------------

def test_signed_envelope_verifies_and_names_the_key(key):
    envelope = dsse.sign_envelope(STATEMENT, key)
    public_hex = dsse.public_key_hex(key.public_key())
    assert envelope["payloadType"] == dsse.INTOTO_PAYLOAD_TYPE == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == STATEMENT
    assert len(envelope["signatures"]) == 1
    assert envelope["signatures"][0]["keyid"] == hashlib.sha256(bytes.fromhex(public_hex)).hexdigest() == dsse.keyid_of(public_hex)
    assert verify(envelope, key.public_key()) == [True]


def test_signature_is_over_the_pae_as_any_dsse_verifier_checks_it(key):
    """Interoperability: the raw Ed25519 signature verifies over PAE(type, payload) with cryptography alone."""
    envelope = dsse.sign_envelope(STATEMENT, key)
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    key.public_key().verify(sig, b"DSSEv1 %d %b %d %b" % (len(dsse.INTOTO_PAYLOAD_TYPE), dsse.INTOTO_PAYLOAD_TYPE.encode(),
                                                          len(STATEMENT), STATEMENT))


@pytest.mark.parametrize("index", [0, 17, -1])
def test_a_flipped_byte_in_the_payload_is_refused(key, index):
    envelope = dsse.sign_envelope(STATEMENT, key)
    envelope["payload"] = flip(envelope["payload"], index)
    assert verify(envelope, key.public_key()) == [False]


@pytest.mark.parametrize("index", [0, 31, 63])
def test_a_flipped_byte_in_the_signature_is_refused(key, index):
    envelope = dsse.sign_envelope(STATEMENT, key)
    envelope["signatures"][0]["sig"] = flip(envelope["signatures"][0]["sig"], index)
    assert verify(envelope, key.public_key()) == [False]


def test_a_signature_by_another_key_is_refused(key):
    envelope = dsse.sign_envelope(STATEMENT, dsse.generate_private_key())
    assert verify(envelope, key.public_key()) == [False]


def test_a_signature_for_one_payload_type_does_not_verify_as_another(key):
    """A policy signature can never be replayed as an approval, or the other way round."""
    envelope = dsse.sign_envelope(STATEMENT, key, payload_type=POLICY_TYPE)
    _ptype, payload, sigs = dsse.parse_envelope(envelope)
    assert dsse.verify_signature(key.public_key(), POLICY_TYPE, payload, sigs[0][1])
    assert not dsse.verify_signature(key.public_key(), dsse.INTOTO_PAYLOAD_TYPE, payload, sigs[0][1])


def test_a_truncated_signature_is_refused(key):
    envelope = dsse.sign_envelope(STATEMENT, key)
    sig = base64.b64decode(envelope["signatures"][0]["sig"])[:40]
    assert not dsse.verify_signature(key.public_key(), dsse.INTOTO_PAYLOAD_TYPE, STATEMENT, sig)


# ---- envelope structure ------------------------------------------------------------------------

def test_base64_in_either_alphabet_with_or_without_padding():
    data = bytes(range(250, 256)) + b"\xfb\xff"
    standard = base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode()
    assert standard != urlsafe
    for text in (standard, urlsafe, standard.rstrip("="), urlsafe.rstrip("=")):
        assert dsse.b64decode(text) == data


@pytest.mark.parametrize("text", ["not base64!", "a", "YQ=x", "-_-_-"])
def test_bad_base64_is_a_value_error(text):
    with pytest.raises(ValueError, match="invalid base64"):
        dsse.b64decode(text)


@pytest.mark.parametrize("mutate, reason", [
    (lambda e: ["not", "an", "object"], "not a JSON object"),
    (lambda e: {k: v for k, v in e.items() if k != "payload"}, "missing field 'payload'"),
    (lambda e: {k: v for k, v in e.items() if k != "payloadType"}, "missing field 'payloadType'"),
    (lambda e: {k: v for k, v in e.items() if k != "signatures"}, "missing field 'signatures'"),
    (lambda e: dict(e, payloadType=7), "payloadType is not a string"),
    (lambda e: dict(e, payload="%%%"), "invalid base64"),
    (lambda e: dict(e, payload=None), "not a base64 string"),
    (lambda e: dict(e, signatures=[]), "signatures is not a non-empty list"),
    (lambda e: dict(e, signatures={"keyid": "x", "sig": "AA=="}), "signatures is not a non-empty list"),
    (lambda e: dict(e, signatures=[e["signatures"][0], {"keyid": "x"}]), "signatures[1] has no sig"),
    (lambda e: dict(e, signatures=["AA=="]), "signatures[0] has no sig"),
    (lambda e: dict(e, signatures=[dict(e["signatures"][0], keyid=5)]), "signatures[0].keyid is not a string"),
    (lambda e: dict(e, signatures=[dict(e["signatures"][0], sig="@@")]), "invalid base64"),
])
def test_malformed_envelopes_say_what_is_wrong(key, mutate, reason):
    with pytest.raises(ValueError) as exc:
        dsse.parse_envelope(mutate(dsse.sign_envelope(STATEMENT, key)))
    assert reason in str(exc.value)


def test_parse_envelope_returns_every_signature(key):
    other = dsse.generate_private_key()
    envelope = dsse.sign_envelope(STATEMENT, key)
    envelope["signatures"] += dsse.sign_envelope(STATEMENT, other)["signatures"]
    del envelope["signatures"][0]["keyid"]  # keyid is optional in DSSE
    assert verify(envelope, key.public_key()) == [True, False]
    assert verify(envelope, other.public_key()) == [False, True]
    assert [keyid for keyid, _sig in dsse.parse_envelope(envelope)[2]] == ["", dsse.keyid_of(dsse.public_key_hex(other.public_key()))]


# ---- keys ------------------------------------------------------------------------------------------

def test_public_key_hex_round_trips(key):
    public_hex = dsse.public_key_hex(key.public_key())
    assert len(public_hex) == 64
    envelope = dsse.sign_envelope(STATEMENT, key)
    assert verify(envelope, dsse.parse_public_key(public_hex)) == [True]


@pytest.mark.parametrize("text", ["zz" * 32, "ab" * 31, "ab" * 33, "", None])
def test_a_bad_public_key_is_refused_with_the_fix(text):
    with pytest.raises(ApprovalError) as exc:
        dsse.parse_public_key(text, "people[3].keys[0].public_key")
    assert str(exc.value).startswith(f"people[3].keys[0].public_key: {text!r} is not an Ed25519 public key (64 hex characters)")
    assert "prodgate keys generate" in str(exc.value)


def test_key_pair_files(tmp_path, key):
    path = str(tmp_path / "alice.key")
    public_hex = dsse.write_key_pair(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert (tmp_path / "alice.key.pub").read_text() == public_hex + "\n"
    loaded = dsse.load_private_key(path)
    assert dsse.public_key_hex(loaded.public_key()) == public_hex


def test_an_existing_key_is_not_replaced_without_force(tmp_path, key):
    path = str(tmp_path / "alice.key")
    first = dsse.write_key_pair(path, key)
    with pytest.raises(ProdgateError, match="already exists: refusing to overwrite it"):
        dsse.write_key_pair(path, dsse.generate_private_key())
    assert dsse.public_key_hex(dsse.load_private_key(path).public_key()) == first
    second = dsse.write_key_pair(path, dsse.generate_private_key(), force=True)
    assert second != first and dsse.public_key_hex(dsse.load_private_key(path).public_key()) == second


def test_no_private_key_is_left_without_its_public_half(tmp_path, key):
    path = str(tmp_path / "bob.key")
    (tmp_path / "bob.key.pub").write_text("someone else's\n")
    with pytest.raises(ProdgateError, match="public key .*bob.key.pub already exists"):
        dsse.write_key_pair(path, key)
    assert not os.path.exists(path)


def test_key_in_a_missing_folder_names_the_folder(tmp_path, key):
    with pytest.raises(ProdgateError, match=f"folder {tmp_path / 'nope'} does not exist"):
        dsse.write_key_pair(str(tmp_path / "nope" / "k.key"), key)


def test_an_encrypted_key_needs_its_passphrase(tmp_path, key):
    path = str(tmp_path / "carol.key")
    dsse.write_private_key(path, key, passphrase="correct horse")
    with pytest.raises(ProdgateError, match="is encrypted: give its passphrase"):
        dsse.load_private_key(path)
    with pytest.raises(ProdgateError, match="wrong passphrase or not a PEM private key"):
        dsse.load_private_key(path, passphrase="wrong horse")
    assert dsse.public_key_hex(dsse.load_private_key(path, "correct horse").public_key()) == dsse.public_key_hex(key.public_key())


def test_a_key_that_is_not_ed25519_is_refused(tmp_path):
    path = tmp_path / "ec.key"
    path.write_bytes(ec_key(SECP256R1()).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    with pytest.raises(ProdgateError, match="is not Ed25519; create one with `prodgate keys generate`"):
        dsse.load_private_key(str(path))


def test_a_file_that_is_not_a_key_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a key\n")
    with pytest.raises(ProdgateError, match="cannot be loaded: wrong passphrase or not a PEM private key"):
        dsse.load_private_key(str(path))


def test_generated_keys_are_ed25519_and_distinct():
    one, two = dsse.generate_private_key(), dsse.generate_private_key()
    assert isinstance(one, Ed25519PrivateKey)
    assert dsse.public_key_hex(one.public_key()) != dsse.public_key_hex(two.public_key())


def test_a_forced_replacement_is_never_readable_by_others_while_the_key_is_written(tmp_path, key):
    """write_private_key promises mode 0600 "from the first byte (never world-readable, even briefly)".
    Replacing (--force) a key file someone left at 0644 must not write the new secret into a file
    others can read; the passphrase is read at the moment the key is serialised, so the probe looks
    then at every file of the folder: the old file keeps its old content, any other is 0600."""
    path = tmp_path / "alice.key"
    path.write_text("old key, left world-readable\n")
    os.chmod(path, 0o644)
    seen = []

    class Probe(str):
        def encode(self, *args, **kwargs):  # pylint: disable=signature-differs
            seen.extend((f.name, stat.S_IMODE(f.stat().st_mode), f.read_bytes()) for f in tmp_path.iterdir())
            return str.encode(self, *args, **kwargs)

    dsse.write_private_key(str(path), key, passphrase=Probe("correct horse"), force=True)
    assert seen, "the passphrase was not used"
    readable = [(name, f"{mode:o}") for name, mode, data in seen
                if mode & 0o077 and data != b"old key, left world-readable\n"]
    assert not readable, f"a file others can read held something else than the old key while the key was written: {readable}"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert dsse.load_private_key(str(path), "correct horse").public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["alice.key"], "the temporary file was left behind"


def test_a_forced_key_pair_replaces_both_files_or_neither(tmp_path, key):
    """--force with a folder where the public key goes: refused, and the old private key is still there and
    still the old one (no private key without its public half), with no temporary file left behind."""
    old = Ed25519PrivateKey.generate()
    path = str(tmp_path / "alice.key")
    dsse.write_key_pair(path, old)
    os.unlink(path + ".pub")
    os.mkdir(path + ".pub")
    with pytest.raises(ProdgateError, match=r"public key .*alice\.key\.pub is a folder"):
        dsse.write_key_pair(path, key, force=True)
    assert dsse.load_private_key(path).public_key().public_bytes_raw() == old.public_key().public_bytes_raw()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.key", "alice.key.pub"]


def test_a_forced_replacement_refuses_a_symbolic_link(tmp_path, key):
    """Replacing would swap the link for a file and leave its target as it was: refused, naming the link."""
    target = tmp_path / "elsewhere.key"
    target.write_text("someone else's file\n")
    link = tmp_path / "alice.key"
    link.symlink_to(target)
    with pytest.raises(ProdgateError, match=r"alice\.key is a symbolic link, not a file"):
        dsse.write_private_key(str(link), key, force=True)
    assert link.is_symlink() and target.read_text() == "someone else's file\n"
