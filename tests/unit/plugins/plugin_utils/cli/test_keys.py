"""`prodgate keys generate` and `keys show` (cli/keys.py), also with --json and a passphrase."""
import json
import os
import stat

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse
from .cli_run import run


def test_keys_generate_writes_0600_key_and_optional_passphrase(tmp_path, capsys, monkeypatch):
    key = tmp_path / "alice.key"
    code, out, dummy_err = run(capsys, "keys", "generate", "--out", str(key), "--person", "alice", "--json")
    assert code == 0
    data = json.loads(out)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert data["keyid"] == dsse.keyid_of(data["public_key"]) and not data["encrypted"]
    assert (tmp_path / "alice.key.pub").read_text().strip() == data["public_key"]
    code, dummy_out, err = run(capsys, "keys", "generate", "--out", str(key))
    assert code == 1 and "refusing to overwrite" in err
    monkeypatch.setenv("PG_PASS", "correct horse")
    enc = tmp_path / "bob.key"
    code, out, dummy_err = run(capsys, "keys", "generate", "--out", str(enc), "--passphrase-env", "PG_PASS", "--json")
    assert json.loads(out)["encrypted"] and b"ENCRYPTED" in enc.read_bytes()
    code, dummy_out, err = run(capsys, "keys", "show", str(enc))
    assert code == 1 and "is encrypted" in err
    code, out, dummy_err = run(capsys, "keys", "show", str(enc), "--passphrase-env", "PG_PASS", "--json")
    assert code == 0 and json.loads(out)["public_key"] == (tmp_path / "bob.key.pub").read_text().strip()
