"""Merkle tree over the change register (RFC 6962 / RFC 9162 section 2.1), for inclusion proofs.

The hash chain proves the register's order; a signed checkpoint that also names the Merkle tree
hash of the entries it covers lets anyone holding one entry and a short audit path prove that the
entry is in the signed register, without the rest of the register (issue 13: evidence an auditor
verifies alone). Leaves are the entries' canonical JSON bodies.

* leaf hash ``SHA-256(0x00 || body)``, node hash ``SHA-256(0x01 || left || right)``;
* the tree hash of n leaves splits at the largest power of two below n (RFC 6962 2.1);
* :class:`Frontier` keeps the roots of the perfect subtrees (one per bit of n), so a checkpoint
  extends the previous checkpoint's tree with only the entries written since.
"""
import hashlib


def leaf_hash(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n):
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def tree_hash(leaves):
    """MTH of a list of leaf hashes (bytes). Returns bytes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def inclusion_proof(leaves, index):
    """The audit path of leaf ``index`` (0-based) in the tree of ``leaves`` (RFC 6962 2.1.1)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} is not in a tree of {n} leaves")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(leaves[:k], index) + [tree_hash(leaves[k:])]
    return inclusion_proof(leaves[k:], index - k) + [tree_hash(leaves[:k])]


def root_from_inclusion(leaf, index, size, proof):
    """The root that ``proof`` leads to from ``leaf`` at ``index`` in a tree of ``size`` (RFC 9162 2.1.3.2).

    Returns None when the proof has the wrong length for (index, size).
    """
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf, index, size, proof, root):
    return root_from_inclusion(leaf, index, size, proof) == root


class Frontier:
    """Roots of the perfect subtrees of a growing tree, largest first (one per set bit of its size).

    Kept as a stack of hashes and the size; ``append`` merges like a binary counter, so adding a
    leaf costs one hash plus one per trailing set bit (amortised two): cheap enough to run inside
    ``verify`` over millions of entries.
    """

    __slots__ = ("stack", "size")

    def __init__(self, nodes=None):
        nodes = list(nodes or [])
        self.stack = [h for _n, h in nodes]
        self.size = sum(n for n, _h in nodes)

    @property
    def nodes(self):
        sizes = [1 << bit for bit in range(self.size.bit_length() - 1, -1, -1) if self.size >> bit & 1]
        return list(zip(sizes, self.stack))

    def append(self, leaf):
        h, k, stack = leaf, self.size, self.stack
        while k & 1:
            h = hashlib.sha256(b"\x01" + stack.pop() + h).digest()
            k >>= 1
        stack.append(h)
        self.size += 1

    def root(self):
        if not self.stack:
            return hashlib.sha256(b"").digest()
        r = self.stack[-1]
        for h in reversed(self.stack[:-1]):
            r = node_hash(h, r)
        return r

    def to_json(self):
        return [[n, h.hex()] for n, h in self.nodes]

    @classmethod
    def from_json(cls, data):
        nodes = [(int(n), bytes.fromhex(h)) for n, h in data or []]
        sizes = [n for n, _h in nodes]
        if any(n < 1 or n & (n - 1) for n in sizes) or any(a <= b for a, b in zip(sizes, sizes[1:])):
            raise ValueError("not a Merkle frontier: subtree sizes must be decreasing powers of two")
        return cls(nodes)
