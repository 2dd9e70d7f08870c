"""`prodgate policy sign` and `policy check` (cli/policy.py), also with --json."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import dsse  # noqa: E402
from .cli_run import run  # noqa: E402


def test_policy_sign_and_check(tmp_path, capsys):
    world = World(tmp_path, sign=False)
    code, out, dummy_err = run(capsys, "policy", "check", world.policy_path, "--json")
    assert code == 1 and "is not signed" in " ".join(json.loads(out)["problems"])
    gov = []
    for i, key in enumerate(world.gov_keys[:2]):
        path = tmp_path / f"gov{i}.key"
        dsse.write_private_key(str(path), key)
        gov.append(str(path))
    code, out, dummy_err = run(capsys, "policy", "sign", world.policy_path, "--key", gov[0])
    assert code == 0 and "1 signature(s), threshold 2" in out
    code, out, dummy_err = run(capsys, "policy", "check", world.policy_path)
    assert code == 1 and "need 2" in out
    run(capsys, "policy", "sign", world.policy_path, "--key", gov[1])
    code, out, dummy_err = run(capsys, "policy", "check", world.policy_path)
    assert code == 0 and "OK, version 1" in out
    code, dummy_out, err = run(capsys, "policy", "sign", world.policy_path, "--key", world.write_key("carol"))
    assert code == 1 and "not one of the policy's governance keys" in err
    world.policy()  # the CLI-signed file loads
