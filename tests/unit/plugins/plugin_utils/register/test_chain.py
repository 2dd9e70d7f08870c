"""Pure chain, checkpoint and verification logic (rows in memory, no database)."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import RegisterError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import (
    GENESIS, chain, entry_hash, generate_key, key_id, load_key, load_public_keys, make_checkpoint, public_key_b64, signature_ok, verify_entries
)
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import canonical_json

RID = "11111111-2222-3333-4444-555555555555"


def _rows(texts):
    return [(i + 1, p, h, b) for i, (p, h, b) in enumerate(chain(GENESIS, texts))]


def _lookup(rows):
    index = {r[2]: r[0] for r in rows}
    return index.get


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return generate_key(str(tmp_path_factory.mktemp("k") / "signing.key"))


def test_entry_hash_is_sha256_of_previous_hash_and_body():
    import hashlib  # pylint: disable=import-outside-toplevel
    assert entry_hash(GENESIS, "{}") == hashlib.sha256(bytes(32) + b"{}").hexdigest()


def test_key_files_and_signatures(tmp_path, key):
    path = str(tmp_path / "k2.key")
    k2 = generate_key(path)
    assert public_key_b64(load_key(path)) == public_key_b64(k2)
    keys = load_public_keys([path + ".pub"])
    assert list(keys) == [key_id(public_key_b64(k2))]
    cp = make_checkpoint(key, RID, 3, "ab" * 32)
    assert signature_ok(cp)
    assert not signature_ok(dict(cp, count=4)) and not signature_ok(dict(cp, head="cd" * 32))
    with pytest.raises(RegisterError, match="keygen"):
        load_key(str(tmp_path / "missing.key"))
    with pytest.raises(FileExistsError):
        generate_key(path)


def test_verify_reports_each_tampering_kind(key):
    texts = [canonical_json({"kind": "outcome", "run": "r", "n": i}) for i in range(6)]
    rows = _rows(texts)
    cp = canonical_json(make_checkpoint(key, RID, 6, rows[-1][2]))
    rows += [(7, rows[-1][2], entry_hash(rows[-1][2], cp), cp)]
    assert verify_entries(rows, RID, lookup=_lookup(rows))["ok"]
    edited = list(rows)
    edited[2] = (3, rows[2][1], rows[2][2], rows[2][3].replace('"n":2', '"n":9'))
    assert verify_entries(edited, RID, lookup=_lookup(edited))["first_problem"]["kind"] == "altered"
    deleted = rows[:3] + rows[4:]
    first = verify_entries(deleted, RID, lookup=_lookup(deleted))["first_problem"]
    assert (first["kind"], first["seq"]) == ("missing", 4)
    swapped = rows[:2] + [(3,) + rows[3][1:], (4,) + rows[2][1:]] + rows[4:]
    first = verify_entries(swapped, RID, lookup=_lookup(swapped))["first_problem"]
    assert (first["kind"], first["seq"]) == ("reordered", 3)
    other_register = verify_entries(rows, "another-id", lookup=_lookup(rows))["first_problem"]
    assert other_register["kind"] == "bad_checkpoint"
    anchor = dict(json.loads(cp), seq=7)
    truncated = verify_entries(rows[:5], RID, anchors=[("a", anchor)], lookup=_lookup(rows[:5]))["first_problem"]
    assert truncated["kind"] == "truncated" and truncated["seq"] == 6


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=2, max_value=30), st.data())
def test_any_single_byte_edit_is_detected(n, data):
    rows = _rows([canonical_json({"kind": "outcome", "n": i}) for i in range(n)])
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    body = rows[i][3]
    j = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    new_char = data.draw(st.characters(codec="ascii").filter(lambda c, old=body[j]: c != old))
    tampered = list(rows)
    tampered[i] = rows[i][:3] + (body[:j] + new_char + body[j + 1:],)
    report = verify_entries(tampered, RID)
    assert not report["ok"] and report["first_problem"]["seq"] == i + 1
