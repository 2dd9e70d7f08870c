"""The evidence bundle (register/evidence.py, issue 13): one file an auditor checks with only the
register's public key. Built from a real register and real signed approvals, checked offline; a
changed byte is found and the problem names the line and the part it is in."""
import base64
import hashlib
import json

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import generate_key, load_public_keys
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.evidence import (
    FORMAT, EvidenceBundleError, build_bundle, verify_bundle)
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store

from .register_world import Register, World, change, gate, install, window


@pytest.fixture(name="made", scope="module")
def fixture_made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evidence")
    world = World(tmp / "world")
    mine = world.evidence()
    other = world.evidence(binding=world.binding(change_id="CHG-2002"))
    reg = Register(tmp)
    reg.run(change("CHG-2002"), "2026-03-02", [gate("CHG-2002", other), install("app1", "1.1.0", "1.0.0\n")])
    reg.run(change("CHG-1001"), "2026-03-03", [gate("CHG-1001", mine), window("2026-03-03"),
                                               install("app1", "1.1.0", "1.0.0\n"), install("app2", "1.1.0", "1.0.0\n")])
    reg.run(change("CHG-2002"), "2026-03-04", [install("app2", "1.1.0", "1.0.0\n")])  # the tree grows past CHG-1001
    with open_store(reg.db) as store:
        text, counts = build_bundle(store, "CHG-1001", world.policy_path, mine + other)
    return {"world": world, "reg": reg, "text": text, "counts": counts, "mine": mine,
            "keys": load_public_keys([reg.pub])}


def lines_of(text):
    return text.split("\n")[:-1]


def replace_line(text, n, mutate):
    """The bundle with line ``n`` (1-based) parsed, changed by ``mutate`` and written back canonically."""
    lines = lines_of(text)
    part = json.loads(lines[n - 1])
    mutate(part)
    lines[n - 1] = json.dumps(part, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "\n".join(lines) + "\n"


def line_of(text, part):
    return next(n for n, line in enumerate(lines_of(text), 1) if f'"part":"{part}"' in line)


def test_the_bundle_of_a_change_verifies_with_only_the_file_and_the_public_key(made):
    report = verify_bundle(made["text"], made["keys"])
    assert report["ok"], report["problems"]
    assert report["change_id"] == "CHG-1001" and report["problems"] == []
    # run_open, 4 intents, 4 outcomes, run_close and the run's own checkpoint entry: every entry of the change's run
    # in the signed tree, none of CHG-2002's
    assert report["entries"] == made["counts"]["entries"] == 11
    assert len(report["approvals"]) == made["counts"]["approvals"] == len(made["mine"])
    assert report["checkpoint"]["count"] == made["counts"]["tree_size"]
    assert report["policy"]["version"] == 1 and len(report["policy"]["signed_by"]) == 2
    header = json.loads(lines_of(made["text"])[0])
    assert header["format"] == FORMAT and header["parts"] == {"policy": 1, "approval": len(made["mine"]),
                                                              "entry": 11, "checkpoint": 1}


def test_only_the_changes_own_approvals_and_runs_are_in_the_bundle(made):
    parts = [json.loads(line) for line in lines_of(made["text"])]
    bodies = [json.loads(p["body"]) for p in parts if p["part"] == "entry"]
    assert {b["run"] for b in bodies} == {"run-002-CHG-1001"}
    approvals = [p for p in parts if p["part"] == "approval"]
    assert all("_source" not in p["envelope"] for p in approvals) and len(approvals) == len(made["mine"])


def test_a_flipped_byte_in_an_entry_is_found_and_the_entry_named(made):
    text = made["text"]
    n = line_of(text, "entry") + 3
    raw = lines_of(text)[n - 1]
    seq = json.loads(raw)["seq"]
    pos = raw.index("Install the release") if "Install the release" in raw else raw.index('"run-002')
    data = bytearray(text.encode("utf-8"))
    start = len("\n".join(lines_of(text)[:n - 1]).encode("utf-8")) + 1
    data[start + pos + 2] ^= 0x01
    report = verify_bundle(data.decode("utf-8"), made["keys"])
    assert not report["ok"]
    assert any(p.startswith(f"line {n}") and f"register entry {seq}" in p for p in report["problems"]), report["problems"]


def test_a_consistently_rewritten_entry_is_not_in_the_signed_register(made):
    """Rewriting an entry and its digest in the header still fails: the inclusion proof does not lead to the root."""
    text = made["text"]
    n = line_of(text, "entry")

    def edit(part):
        part["body"] = part["body"].replace("upgrade.yml", "harmless.yml")
    text = replace_line(text, n, edit)
    text = replace_line(text, 1, lambda h: h["line_sha256"].__setitem__(
        n - 2, hashlib.sha256(lines_of(text)[n - 1].encode("utf-8")).hexdigest()))
    seq = json.loads(lines_of(text)[n - 1])["seq"]
    problems = verify_bundle(text, made["keys"])["problems"]
    assert problems[0] == (f"line {n}: register entry {seq} (run_open): not in the signed register: its content, "
                           "position or proof was altered")
    assert not any("digest" in p for p in problems)  # the digests were rewritten to match: only the proof catches it


@pytest.mark.parametrize("part, mutate, expected", [
    ("policy", lambda p: p.__setitem__("text", p["text"].replace("version: 1", "version: 2")), "policy"),
    ("approval", lambda p: p["envelope"]["signatures"][0].__setitem__("sig", base64.b64encode(bytes(64)).decode()),
     "approval of henry (plan_submission/it_head): its signature does not verify with henry's key in the policy"),
    ("checkpoint", lambda p: p["checkpoint"].__setitem__("count", p["checkpoint"]["count"] + 1),
     "checkpoint: its signature does not verify"),
])
def test_an_altered_part_is_named(made, part, mutate, expected):
    n = line_of(made["text"], part)
    report = verify_bundle(replace_line(made["text"], n, mutate), made["keys"])
    assert not report["ok"]
    assert any(p.startswith(f"line {n}: {expected}") for p in report["problems"]), report["problems"]


def test_a_consumed_approval_left_out_of_the_bundle_is_reported(made):
    text = made["text"]
    n = line_of(text, "approval")
    dropped = json.loads(lines_of(text)[n - 1])
    lines = lines_of(text)
    del lines[n - 1]
    problems = verify_bundle("\n".join(lines) + "\n", made["keys"])["problems"]
    person = json.loads(base64.b64decode(dropped["envelope"]["payload"]))["predicate"]["person"]
    assert any(f"the gate consumed the approval of {person}" in p and "its signed envelope is not in the bundle" in p
               for p in problems), problems
    assert any("header: it lists" in p and "approval part(s)" in p for p in problems)


def test_another_register_key_is_not_trusted(made, tmp_path):
    generate_key(str(tmp_path / "other.key"))
    report = verify_bundle(made["text"], load_public_keys([str(tmp_path / "other.key.pub")]))
    assert not report["ok"] and any("which is not the trusted register key" in p for p in report["problems"])
    assert not verify_bundle(made["text"], {})["ok"]


def test_a_pinned_root_that_did_not_sign_the_policy_refuses_it(made, tmp_path):
    stranger = World(tmp_path / "stranger")
    report = verify_bundle(made["text"], made["keys"], policy_root=stranger.write_root())
    assert not report["ok"]
    n = line_of(made["text"], "policy")
    assert any(p.startswith(f"line {n}: policy:") and "signature" in p for p in report["problems"]), report["problems"]
    assert verify_bundle(made["text"], made["keys"], policy_root=made["world"].write_root())["ok"]


def test_a_cut_file_and_a_missing_header_are_reported(made):
    cut = made["text"][:-1]
    assert any("does not end with a newline" in p for p in verify_bundle(cut, made["keys"])["problems"])
    headless = "\n".join(lines_of(made["text"])[1:]) + "\n"
    report = verify_bundle(headless, made["keys"])
    assert not report["ok"] and "line 1: the header is missing" in report["problems"]


def test_build_refuses_a_change_not_in_the_register(made):
    with open_store(made["reg"].db) as store:
        with pytest.raises(EvidenceBundleError, match="no run of change 'CHG-404' in the register"):
            build_bundle(store, "CHG-404", made["world"].policy_path, [])


def test_build_refuses_a_change_whose_run_no_checkpoint_covers_yet(tmp_path):
    world = World(tmp_path / "world")
    reg = Register(tmp_path)
    reg.run(change("CHG-1"), "2026-03-02", [install("app1", "1.1.0", "1.0.0\n")])
    reg.run(change("CHG-2"), "2026-03-03", [install("app1", "1.2.0", "1.1.0\n")], checkpoint=False)
    with open_store(reg.db) as store:
        with pytest.raises(EvidenceBundleError, match="change 'CHG-2' has no entry covered by the last checkpoint yet"):
            build_bundle(store, "CHG-2", world.policy_path, [])
        with pytest.raises(EvidenceBundleError, match="policy .* cannot be read"):
            build_bundle(store, "CHG-1", str(tmp_path / "missing.yml"), [])


def test_build_refuses_a_register_without_a_merkle_checkpoint(tmp_path):
    world = World(tmp_path / "world")
    reg = Register(tmp_path)
    reg.run(change("CHG-1"), "2026-03-02", [install("app1", "1.1.0", "1.0.0\n")], checkpoint=False)
    with open_store(reg.db) as store:
        with pytest.raises(EvidenceBundleError, match="no checkpoint with a Merkle root yet"):
            build_bundle(store, "CHG-1", world.policy_path, [])
