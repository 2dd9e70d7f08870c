"""`prodgate audit verify` (cli/audit.py): an auditor checks a bundle written by `prodgate evidence
export` with the file and the register's public key only; exit 0 verified, 1 not (the altered part
named), 2 for a usage error. Also the command groups' own help (cli/_common.add_group)."""
import argparse
import json

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli import main
from .cli_run import run
from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli._common import add_group
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import generate_key

from ..register.register_world import Register, World, change, gate, install


@pytest.fixture(name="bundle")
def fixture_bundle(tmp_path, monkeypatch, capsys):
    world = World(tmp_path / "world")
    envelopes = world.evidence()
    reg = Register(tmp_path / "reg")
    reg.run(change("CHG-1001"), "2026-03-03", [gate("CHG-1001", envelopes), install("app1", "1.1.0", "1.0.0\n")])
    reg.environ(monkeypatch, tmp_path)
    out = tmp_path / "CHG-1001.evidence.jsonl"
    code, stdout, err = run(capsys, "evidence", "export", "CHG-1001", "--out", out, "--policy", world.policy_path,
                            "--evidence", world.write_evidence(envelopes), "--json")
    assert code == 0, err
    assert json.loads(stdout)["entries"] == 6  # run_open, 2 intents, 2 outcomes, run_close
    # the auditor's machine: no register, no controller settings
    monkeypatch.delenv("PRODGATE_REGISTER_DB")
    return {"file": out, "pub": reg.pub, "world": world, "approvals": len(envelopes)}


def test_a_bundle_verifies_with_the_public_key_alone(bundle, capsys):
    code, out, err = run(capsys, "audit", "verify", bundle["file"], "--trusted-key", bundle["pub"])
    assert code == 0 and err == ""
    assert out.startswith("VERIFIED: change CHG-1001: 6 register entries proven in the register signed at checkpoint")
    assert f"{bundle['approvals']} signed approval(s); policy v1 signed by 2 governance key(s)" in out
    code, out, _err = run(capsys, "audit", "verify", bundle["file"], "--trusted-key", bundle["pub"], "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["change_id"] == "CHG-1001" and data["file"] == str(bundle["file"])
    assert len(data["approvals"]) == bundle["approvals"] and data["problems"] == []


def test_an_altered_entry_is_not_verified_and_the_line_is_named(bundle, capsys, tmp_path):
    lines = bundle["file"].read_text(encoding="utf-8").split("\n")
    n = next(i for i, line in enumerate(lines, 1) if '"part":"entry"' in line and "Install the release" in line)
    lines[n - 1] = lines[n - 1].replace("Install the release", "Install the relea5e")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines), encoding="utf-8")
    code, out, _err = run(capsys, "audit", "verify", bad, "--trusted-key", bundle["pub"])
    assert code == 1 and out.startswith("NOT VERIFIED:\n")
    assert f"  - line {n} (a register entry) does not match its digest in the header" in out
    assert f"  - line {n}: register entry" in out and "not in the signed register" in out
    code, out, _err = run(capsys, "audit", "verify", bad, "--trusted-key", bundle["pub"], "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_a_byte_that_is_not_utf8_is_reported_with_its_line(bundle, capsys, tmp_path):
    data = bytearray(bundle["file"].read_bytes())
    pos = data.index(b'"part":"checkpoint"')
    data[pos] = 0xff
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(bytes(data))
    line = bytes(data[:pos]).count(b"\n") + 1
    code, out, _err = run(capsys, "audit", "verify", bad, "--trusted-key", bundle["pub"])
    assert code == 1 and f"line {line}: not UTF-8 text at byte {pos}: the file was altered" in out


def test_the_register_key_of_someone_else_is_not_trusted(bundle, capsys, tmp_path):
    generate_key(str(tmp_path / "other.key"))
    code, out, _err = run(capsys, "audit", "verify", bundle["file"], "--trusted-key", tmp_path / "other.key.pub")
    assert code == 1 and "which is not the trusted register key" in out


def test_a_policy_root_that_did_not_sign_the_policy_is_not_verified(bundle, capsys, tmp_path):
    stranger = World(tmp_path / "stranger")
    code, out, _err = run(capsys, "audit", "verify", bundle["file"], "--trusted-key", bundle["pub"],
                          "--policy-root", stranger.write_root())
    assert code == 1 and "line 2: policy:" in out
    code, _out, _err = run(capsys, "audit", "verify", bundle["file"], "--trusted-key", bundle["pub"],
                           "--policy-root", bundle["world"].write_root())
    assert code == 0


def test_a_missing_file_is_one_error_line_naming_the_fix(capsys, tmp_path):
    code, out, err = run(capsys, "audit", "verify", tmp_path / "nope.jsonl", "--trusted-key", tmp_path / "k.pub")
    assert code == 1 and out == ""
    assert err.strip() == (f"prodgate: error: evidence file {tmp_path / 'nope.jsonl'} cannot be read: No such file or "
                           "directory; give the file written by `prodgate evidence export`")


def test_the_trusted_key_is_required_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "verify", str(tmp_path / "x.jsonl")])
    assert exc.value.code == 2
    assert "prodgate: error: the following arguments are required: --trusted-key" in capsys.readouterr().err


def test_the_audit_group_without_a_subcommand_prints_its_help_and_exits_2(capsys):
    code, out, _err = run(capsys, "audit")
    assert code == 2 and "usage: prodgate audit [-h] SUBCOMMAND" in out and "verify" in out


def test_a_group_without_a_subcommand_prints_its_own_help_and_exits_2(capsys):
    parser = argparse.ArgumentParser(prog="prodgate")
    sub = add_group(parser.add_subparsers(dest="group"), "things", "things_command", help="things")
    sub.add_parser("list").set_defaults(handler=lambda args: 0)
    args = parser.parse_args(["things"])
    assert args.handler(args) == 2
    assert "usage: prodgate things [-h] SUBCOMMAND" in capsys.readouterr().out
    args = parser.parse_args(["things", "list"])
    assert args.things_command == "list" and args.handler(args) == 0
