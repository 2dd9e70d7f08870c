"""DSSE interoperability with securesystemslib, both ways."""
import sys
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import approvals, dsse  # noqa: E402


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


def sslib_key(private_key):
    public = dsse.public_key_hex(private_key.public_key())
    return SSlibKey(dsse.keyid_of(public), "ed25519", "ed25519", {"public": public})


def test_envelope_signed_by_securesystemslib_verifies_in_prodgate(world):
    binding = world.binding()
    statement = approvals.make_statement(binding, "go_live", "coo", "carol", world.now.replace(year=world.now.year - 1),
                                         world.now.replace(year=world.now.year + 1), issued_at=world.now)
    payload = approvals.json.dumps(statement).encode()
    key = world.keys["carol"]
    signer = CryptoSigner(key, sslib_key(key))
    envelope = Envelope(payload, dsse.INTOTO_PAYLOAD_TYPE, {})
    envelope.sign(signer)
    as_dict = envelope.to_dict()
    norm = approvals.normalise_binding(binding)
    norm["_target_set"] = set(norm["targets"])
    approval, problem = approvals.verify_envelope(world.policy(), as_dict, norm, world.now)
    assert problem is None and approval.person == "carol" and approval.stage == "go_live"
    # and the verification is real: the same envelope with another signer's keyid fails
    as_dict["signatures"][0]["keyid"] = dsse.keyid_of(dsse.public_key_hex(world.keys["cody"].public_key()))
    approval, problem = approvals.verify_envelope(world.policy(), as_dict, norm, world.now)
    assert approval is None and "signature does not verify" in problem


def test_envelope_signed_by_prodgate_verifies_in_securesystemslib(world):
    env = world.approve("go_live", "coo", "carol")
    parsed = Envelope.from_dict(dict(env, signatures=[dict(s) for s in env["signatures"]]))
    accepted = parsed.verify([sslib_key(world.keys["carol"])], 1)
    assert list(accepted) == [dsse.keyid_of(dsse.public_key_hex(world.keys["carol"].public_key()))]
    with pytest.raises(VerificationError):
        Envelope.from_dict(dict(env, signatures=[dict(s) for s in env["signatures"]])).verify([sslib_key(world.keys["cody"])], 1)
