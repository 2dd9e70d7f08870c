"""release.verify_approved: the bundle is complete, untampered and the approved one; each refusal
names what is wrong (issue 12: no more "its digest ? is not the approved ...")."""
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import release
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ReleaseError


def make_bundle(root, version="2.0.1"):
    src = Path(root) / f"src-{version}"
    (src / "app").mkdir(parents=True)
    (src / "app" / "svc.py").write_text(f"print('svc {version}')\n")
    (src / "docs").mkdir()
    for doc in release.REQUIRED_DOCUMENTS + ("rollback",):
        (src / "docs" / f"{doc}.md").write_text(f"# {doc}\n")
    lines = [f"system: svc\nversion: '{version}'\nparameters:\n  - {{name: port, default: 80, risk: medium}}\ndocuments:"]
    lines += [f"  {doc}: docs/{doc}.md" for doc in release.REQUIRED_DOCUMENTS]
    lines += ["rollback_plan: docs/rollback.md"]
    (src / "release.yml").write_text("\n".join(lines) + "\n")
    path, _manifest = release.build_bundle(str(src), str(root))
    return path, hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_the_approved_bundle_is_verified(tmp_path):
    path, digest = make_bundle(tmp_path)
    found = release.verify_approved(path, digest.upper())
    assert (found["system"], found["version"], found["sha256"]) == ("svc", "2.0.1", digest)
    assert found["rollback_plan"] == "docs/rollback.md" and found["parameters"] == {"port": "medium"}
    assert found["manifest"]["format"] == release.FORMAT


def test_another_bundle_names_both_digests(tmp_path):
    _approved, approved_digest = make_bundle(tmp_path, "2.0.1")
    other, other_digest = make_bundle(tmp_path, "2.0.2")
    with pytest.raises(ReleaseError) as err:
        release.verify_approved(other, approved_digest)
    assert str(err.value) == (f"bundle {other} (svc 2.0.2) is not the approved release: its sha256 is {other_digest}, "
                              f"the approvals sign {approved_digest}; deliver the approved bundle, or have this one approved")


@pytest.mark.parametrize("digest", ["", "abc", "g" * 64, None])
def test_a_malformed_approved_digest_is_refused(tmp_path, digest):
    path, _digest = make_bundle(tmp_path)
    with pytest.raises(ReleaseError, match="is not a sha256 \\(64 hexadecimal digits\\)"):
        release.verify_approved(path, digest)


def test_a_missing_bundle_is_named(tmp_path):
    with pytest.raises(ReleaseError, match=f"bundle {tmp_path}/nope.tar.gz does not exist"):
        release.verify_approved(str(tmp_path / "nope.tar.gz"), "0" * 64)


def test_an_altered_bundle_names_the_file_before_the_digest(tmp_path):
    path, digest = make_bundle(tmp_path)
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(path, "w:gz") as tar:
        for member, data in members:
            if member.name == "app/svc.py":
                data = b"print('backdoor')\n"
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(ReleaseError, match="digest mismatch for app/svc.py: .* the bundle was altered after it was built"):
        release.verify_approved(path, digest)
