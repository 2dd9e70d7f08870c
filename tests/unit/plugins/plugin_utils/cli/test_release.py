"""`prodgate release build` and `release verify` (cli/release.py): --json, and a refusal naming the altered file."""
import json

from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli import main
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import release
from ..governance.test_release import make_source, repack  # the bundle helpers of release.py's tests


def test_cli_build_and_verify_json_and_refusal(tmp_path, capsys):
    src = make_source(tmp_path / "src")
    out = tmp_path / "out.tar.gz"
    assert main(["release", "build", str(src), "-o", str(out), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["sha256"] == release.bundle_digest(str(out)) and built["version"] == "2.0.1"
    assert main(["release", "verify", str(out)]) == 0
    assert f"sha256 {built['sha256']}" in capsys.readouterr().out
    bad = repack(str(out), str(tmp_path / "bad.tar.gz"), lambda n, d: d + b"#" if n == "app/svc.py" else d)
    assert main(["release", "verify", bad, "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is False and "digest mismatch for app/svc.py" in answer["error"]
