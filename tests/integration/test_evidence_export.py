"""`prodgate evidence export` and `prodgate audit verify`: one file an auditor checks alone, with only
the register's public key; any changed byte is found and the message names the part (issue 13)."""
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

# tests/approval_world.py by path: tests/integration/lab_world.py (the lab's world) has the same
# module name, and whichever is imported first would shadow the other.
_SPEC = importlib.util.spec_from_file_location("prodgate_tests_approval_world",
                                               Path(__file__).resolve().parents[1] / "approval_world.py")
_WORLD = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_WORLD)
World = _WORLD.World

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.evidence import verify_bundle  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import load_public_keys  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import RegisterWriter  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"


def _prodgate(env, *args):
    return subprocess.run([str(BIN / "prodgate"), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _nonces(envelopes):
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse  # pylint: disable=import-outside-toplevel
    out = []
    for env in envelopes:
        pred = json.loads(dsse.parse_envelope(env)[1])["predicate"]
        out.append({k: pred[k] for k in ("stage", "role", "person", "nonce", "issued_at")})
    return out


def _record(tmp_path, change_id, approvals, run_id):
    w = RegisterWriter(url=str(tmp_path / "register.db"), signing_key=str(tmp_path / "keys" / "signing.key"),
                       anchor=str(tmp_path / "anchor-{register_id}.json"), journal_dir=str(tmp_path / "journal"))
    w.preflight({"kind": "run_open", "run": run_id, "ts": "2026-11-29T08:00:00Z", "playbook": "upgrade.yml",
                 "change": {"id": change_id, "type": "version_update", "system": "ta-core", "environment": "production"}})
    w.append([{"kind": "outcome", "run": run_id, "host": "localhost", "task": "Approval gate", "status": "ok",
               "module": "prodgate.deploy.approval_gate", "changed": False,
               "evidence": {"type": "approval_gate", "change_id": change_id, "approvals": approvals}}])
    for host in ("app1", "app2"):
        w.append([{"kind": "outcome", "run": run_id, "host": host, "task": "Install the release", "status": "ok",
                   "module": "ansible.builtin.unarchive", "changed": True}])
    w.append([{"kind": "run_close", "run": run_id, "stats": {}, "failed_hosts": []}])
    assert w.checkpoint() and w.broken is None
    w.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    world = World(tmp / "world")
    envelopes = world.evidence()
    other = world.evidence(binding=world.binding(change_id="CHG-2002"))
    evidence = world.write_evidence(envelopes + other)
    _record(tmp, "CHG-2002", _nonces(other), "run-a")
    _record(tmp, "CHG-1001", _nonces(envelopes), "run-b")
    _record(tmp, "CHG-2002", [], "run-c")  # a later run: the tree grows past the exported change
    env = dict(os.environ, PRODGATE_REGISTER_DB=str(tmp / "register.db"))
    out = tmp / "CHG-1001.evidence.jsonl"
    proc = _prodgate(env, "evidence", "export", "CHG-1001", "--out", str(out), "--policy", world.policy_path,
                     "--evidence", evidence, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"tmp": tmp, "env": env, "out": out, "pub": str(tmp / "keys" / "signing.key.pub"),
            "counts": json.loads(proc.stdout), "approvals": len(envelopes), "world": world}


def test_exported_change_verifies_with_only_the_file_and_the_public_key(exported):
    assert exported["counts"]["approvals"] == exported["approvals"] and exported["counts"]["entries"] == 6
    # an empty environment: no register, no policy file, no evidence folder
    proc = _prodgate({"PATH": os.environ["PATH"]}, "audit", "verify", str(exported["out"]), "--trusted-key",
                     exported["pub"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("VERIFIED: change CHG-1001: 6 register entries proven")


def test_another_key_is_not_trusted(exported, tmp_path):
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import generate_key  # pylint: disable=import-outside-toplevel
    generate_key(str(tmp_path / "other.key"))
    proc = _prodgate(exported["env"], "audit", "verify", str(exported["out"]), "--trusted-key",
                     str(tmp_path / "other.key.pub"))
    assert proc.returncode == 1 and "not the trusted register key" in proc.stdout


def _flipped(text, pos):
    data = bytearray(text.encode("utf-8"))
    data[pos] ^= 0x01
    return bytes(data)


def _check(raw, keys):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the CLI reports the byte; covered below
    return verify_bundle(text, keys)


def test_every_altered_byte_is_detected_and_named(exported):
    text = exported["out"].read_text(encoding="utf-8")
    keys = load_public_keys([exported["pub"]])
    assert verify_bundle(text, keys)["ok"]
    data = text.encode("utf-8")
    lines = text.split("\n")
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line.encode("utf-8")) + 1
    # every byte of the header and the checkpoint, every line boundary, and 300 bytes spread over the rest
    chosen = set(range(0, starts[1])) | set(range(starts[-2], len(data))) | {s - 1 for s in starts[1:]}
    chosen |= set(range(0, len(data), max(1, len(data) // 300)))
    missed = []
    for p in sorted(chosen):
        report = _check(_flipped(text, p), keys)
        if report is not None and (report["ok"] or not report["problems"]):
            missed.append(p)
        elif report is not None:
            line = text.encode("utf-8")[:p].count(b"\n") + 1
            assert any(f"line {line}" in m or "line 1" in m or "header" in m for m in report["problems"]), \
                (p, report["problems"])
    assert not missed, f"{len(missed)} of {len(chosen)} flipped bytes went unnoticed, first at {missed[:5]}"


@pytest.mark.parametrize("part", ["policy", "approval", "entry", "checkpoint"])
def test_the_message_names_the_altered_part(exported, part, tmp_path):
    text = exported["out"].read_text(encoding="utf-8")
    lines = text.split("\n")
    n = next(i for i, line in enumerate(lines) if line.startswith("{") and f'"part":"{part}"' in line)
    obj = json.loads(lines[n])
    if part == "policy":
        obj["text"] = obj["text"].replace("version: 1", "version: 2")
    elif part == "approval":
        obj["envelope"]["signatures"][0]["sig"] = obj["envelope"]["signatures"][0]["sig"][::-1]
    elif part == "entry":
        obj["body"] = obj["body"].replace("upgrade.yml", "upgrade2.yml")
    else:
        obj["checkpoint"]["count"] += 1
    lines[n] = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines), encoding="utf-8")
    proc = _prodgate(exported["env"], "audit", "verify", str(bad), "--trusted-key", exported["pub"])
    assert proc.returncode == 1 and "NOT VERIFIED" in proc.stdout
    expected = {"policy": f"line {n + 1}: policy", "approval": f"line {n + 1}: approval",
                "entry": f"line {n + 1}: register entry", "checkpoint": f"line {n + 1}: checkpoint"}[part]
    assert expected in proc.stdout, proc.stdout


def test_a_byte_that_is_not_utf8_is_reported_by_line(exported, tmp_path):
    data = bytearray(exported["out"].read_bytes())
    data[40] = 0xFF
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(bytes(data))
    proc = _prodgate(exported["env"], "audit", "verify", str(bad), "--trusted-key", exported["pub"])
    assert proc.returncode == 1 and "line 1: not UTF-8" in proc.stdout
