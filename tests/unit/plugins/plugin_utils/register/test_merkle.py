"""The register's Merkle tree against RFC 6962's reference vectors (certificate-transparency test data),
inclusion proofs for every leaf of every size, and the frontier a checkpoint extends."""
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.merkle import (
    Frontier, inclusion_proof, leaf_hash, root_from_inclusion, tree_hash, verify_inclusion
)

# The eight leaves and roots of the Certificate Transparency reference implementation's tests.
LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
HASHES = [leaf_hash(bytes.fromhex(x)) for x in LEAVES]


@pytest.mark.parametrize("size", range(1, 9))
def test_tree_hash_and_frontier_match_the_rfc6962_reference_roots(size):
    assert tree_hash(HASHES[:size]).hex() == ROOTS[size - 1]
    f = Frontier()
    for h in HASHES[:size]:
        f.append(h)
    assert f.root().hex() == ROOTS[size - 1] and f.size == size
    assert Frontier.from_json(f.to_json()).root() == f.root()


def test_reference_audit_path_of_leaf_0_in_8():
    # certificate-transparency: path for leaf 0 of 8
    assert [p.hex() for p in inclusion_proof(HASHES, 0)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
@settings(max_examples=150, deadline=None)
def test_every_inclusion_proof_verifies_and_a_wrong_leaf_or_index_does_not(leaves, data):
    hashes = [leaf_hash(x) for x in leaves]
    root = tree_hash(hashes)
    i = data.draw(st.integers(0, len(hashes) - 1))
    proof = inclusion_proof(hashes, i)
    assert verify_inclusion(hashes[i], i, len(hashes), proof, root)
    assert not verify_inclusion(leaf_hash(b"forged"), i, len(hashes), proof, root)
    if len(hashes) > 1:
        j = (i + 1) % len(hashes)
        assert hashes[j] == hashes[i] or not verify_inclusion(hashes[i], j, len(hashes), proof, root)
    assert root_from_inclusion(hashes[i], i, len(hashes), proof + [b"x" * 32]) is None


def test_frontier_extends_a_saved_frontier():
    f = Frontier()
    for h in HASHES[:5]:
        f.append(h)
    g = Frontier.from_json(f.to_json())
    for h in HASHES[5:]:
        g.append(h)
    assert g.root().hex() == ROOTS[7]
    with pytest.raises(ValueError):
        Frontier.from_json([[1, "00" * 32], [2, "00" * 32]])
