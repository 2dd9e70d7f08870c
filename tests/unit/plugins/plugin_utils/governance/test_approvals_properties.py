"""Property tests: a mutated envelope or payload is never accepted and never crashes the verifier."""
import base64
import json
import sys
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import approvals  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.approvals import verify_envelope  # noqa: E402

_STATE = {}


def world_and_envelope(tmp_path_factory):
    if "world" not in _STATE:
        world = World(tmp_path_factory.mktemp("props"))
        _STATE["world"] = world
        _STATE["policy"] = world.policy()
        _STATE["binding"] = approvals.normalise_binding(world.binding())
        _STATE["binding"]["_target_set"] = set(_STATE["binding"]["targets"])
        _STATE["envelope"] = world.approve("go_live", "coo", "carol")
    return _STATE


def verify(state, envelope):
    approval, problem = verify_envelope(state["policy"], envelope, state["binding"], state["world"].now)
    assert (approval is None) != (problem is None)
    return approval, problem


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=8)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_the_untouched_envelope_is_accepted(tmp_path_factory):
    state = world_and_envelope(tmp_path_factory)
    approval, problem = verify(state, state["envelope"])
    assert problem is None and approval.person == "carol"


@SETTINGS
@given(data=st.data())
def test_flipping_bytes_of_payload_or_signature_is_never_accepted(tmp_path_factory, data):
    state = world_and_envelope(tmp_path_factory)
    env = json.loads(json.dumps(state["envelope"]))
    field = data.draw(st.sampled_from(["payload", "sig"]))
    raw = bytearray(base64.b64decode(env["payload"] if field == "payload" else env["signatures"][0]["sig"]))
    positions = data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4, unique=True))
    for pos in positions:
        raw[pos] ^= data.draw(st.integers(1, 255))
    encoded = base64.b64encode(bytes(raw)).decode()
    if field == "payload":
        env["payload"] = encoded
    else:
        env["signatures"][0]["sig"] = encoded
    approval, problem = verify(state, env)
    assert approval is None and problem


@SETTINGS
@given(data=st.data())
def test_structural_mutation_of_the_envelope_is_never_accepted(tmp_path_factory, data):
    state = world_and_envelope(tmp_path_factory)
    env = json.loads(json.dumps(state["envelope"]))
    kind = data.draw(st.sampled_from(["drop", "replace", "payload_type", "keyid", "truncate", "extra_sig_only"]))
    if kind == "drop":
        env.pop(data.draw(st.sampled_from(["payload", "payloadType", "signatures"])))
    elif kind == "replace":
        env[data.draw(st.sampled_from(["payload", "payloadType", "signatures"]))] = data.draw(json_values)
    elif kind == "payload_type":
        env["payloadType"] = data.draw(st.text(max_size=40).filter(lambda t: t != env["payloadType"]))
    elif kind == "keyid":
        env["signatures"][0]["keyid"] = data.draw(st.text(max_size=64))
    elif kind == "truncate":
        cut = data.draw(st.integers(0, len(env["payload"]) - 1))
        # dropping only '=' padding leaves the same signed bytes (DSSE accepts unpadded base64)
        assume(env["payload"][cut:].strip("=") != "")
        env["payload"] = env["payload"][:cut]
    else:
        env["signatures"] = [{"keyid": env["signatures"][0]["keyid"], "sig": data.draw(st.text(max_size=90))}]
    approval, problem = verify(state, env)
    assert approval is None and problem


@SETTINGS
@given(data=st.data())
def test_mutated_statement_signed_by_a_valid_key_never_crashes(tmp_path_factory, data):
    # Even a correctly signed but garbled statement must yield a problem or an approval, never an exception;
    # and a binding field changed to anything else is never accepted.
    state = world_and_envelope(tmp_path_factory)
    world = state["world"]
    statement = json.loads(base64.b64decode(state["envelope"]["payload"]))
    where = data.draw(st.sampled_from(["predicate", "top"]))
    if where == "predicate":
        key = data.draw(st.sampled_from(sorted(statement["predicate"])))
        statement["predicate"][key] = data.draw(json_values)
    else:
        key = data.draw(st.sampled_from(["_type", "subject", "predicateType", "predicate"]))
        statement[key] = data.draw(json_values)
    envelope = approvals.sign_statement(statement, world.keys["carol"])
    approval, dummy = verify(state, envelope)
    critical = {"change_id", "system", "environment", "change_type", "version", "stage", "role", "person",
                "targets", "nonce", "not_after", "not_before", "_type", "subject", "predicateType", "predicate"}
    original = json.loads(base64.b64decode(state["envelope"]["payload"]))
    changed = (statement["predicate"] if where == "predicate" else statement).get(key) != \
        (original["predicate"] if where == "predicate" else original).get(key)
    if key in critical and changed and approval is not None:
        # the only acceptable survivors are values equal in meaning (e.g. same targets superset)
        assert key == "targets" and set(statement["predicate"]["targets"]) >= {"app1", "app2"}
