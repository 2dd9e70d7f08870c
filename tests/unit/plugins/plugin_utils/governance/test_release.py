"""Release bundles (Art. 8-10, 28): build, verify, refusals with the reason (the CLI: cli/test_release.py)."""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import socket
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import release
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ReleaseError

SAMPLE = Path(__file__).resolve().parents[4] / "fixtures" / "sampleapp"


def make_source(root, **overrides):
    src = Path(root)
    (src / "app").mkdir(parents=True)
    (src / "app" / "svc.py").write_text("print('svc')\n")
    (src / "data").mkdir()
    (src / "data" / "001_seed.sql").write_text("INSERT INTO t VALUES (1);\n")
    (src / "migrations").mkdir()
    (src / "migrations" / "001_t.sql").write_text("CREATE TABLE t (id int);\n")
    (src / "docs").mkdir()
    for doc in release.REQUIRED_DOCUMENTS + ("rollback",):
        (src / "docs" / f"{doc}.md").write_text(f"# {doc}\n")
    source = {"system": "svc", "version": "2.0.1",
              "parameters": [{"name": "port", "default": 80, "risk": "medium"}],
              "documents": {doc: f"docs/{doc}.md" for doc in release.REQUIRED_DOCUMENTS},
              "rollback_plan": "docs/rollback.md"}
    source.update(overrides)
    (src / "release.yml").write_text(yaml.safe_dump(source))
    return src


def repack(bundle, out, change):
    """Rewrite ``bundle`` into ``out`` with ``change(name, data) -> data or None (drop)`` applied."""
    members = []
    with tarfile.open(bundle) as tar:
        for member in tar.getmembers():
            data = change(member.name, tar.extractfile(member).read())
            if data is not None:
                members.append((member.name, data))
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture(name="bundle")
def fixture_bundle(tmp_path):
    path = release.build_bundle(str(make_source(tmp_path / "src")), str(tmp_path))[0]
    return path


def test_build_writes_manifest_with_digests_grades_documents_and_rollback_plan(bundle):
    assert os.path.basename(bundle) == "svc-2.0.1.tar.gz"
    manifest = release.verify_bundle(bundle)
    assert manifest["system"] == "svc" and manifest["version"] == "2.0.1"
    assert [e["path"] for e in manifest["artifacts"]] == ["app/svc.py"]
    assert [e["path"] for e in manifest["data_scripts"]] == ["data/001_seed.sql"]
    assert [e["path"] for e in manifest["migrations"]] == ["migrations/001_t.sql"]
    assert manifest["parameters"] == [{"name": "port", "default": 80, "risk": "medium"}]
    assert set(manifest["documents"]) == set(release.REQUIRED_DOCUMENTS)
    assert manifest["rollback_plan"]["path"] == "docs/rollback.md"
    assert manifest["artifacts"][0]["sha256"] == hashlib.sha256(b"print('svc')\n").hexdigest()


def test_same_source_gives_same_bundle_digest(tmp_path):
    src = make_source(tmp_path / "src")
    first = release.build_bundle(str(src), str(tmp_path / "a.tar.gz"))[0]
    os.utime(src / "app" / "svc.py", (1, 1))
    second = release.build_bundle(str(src), str(tmp_path / "b.tar.gz"))[0]
    assert release.bundle_digest(first) == release.bundle_digest(second)
    (src / "app" / "svc.py").write_text("print('changed')\n")
    third = release.build_bundle(str(src), str(tmp_path / "c.tar.gz"))[0]
    assert release.bundle_digest(third) != release.bundle_digest(first)


def test_tampered_file_is_refused_naming_it(bundle, tmp_path):
    bad = repack(bundle, str(tmp_path / "bad.tar.gz"),
                 lambda name, data: b"print('evil')\n" if name == "app/svc.py" else data)
    with pytest.raises(ReleaseError, match=r"digest mismatch for app/svc\.py"):
        release.verify_bundle(bad)


def test_tampered_data_script_is_refused(bundle, tmp_path):
    bad = repack(bundle, str(tmp_path / "bad.tar.gz"),
                 lambda name, data: data + b"DELETE FROM t;\n" if name == "data/001_seed.sql" else data)
    with pytest.raises(ReleaseError, match=r"digest mismatch for data/001_seed\.sql"):
        release.verify_bundle(bad)


def test_added_file_is_refused(bundle, tmp_path):
    with tarfile.open(bundle) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name, data in members + [("app/backdoor.py", b"x")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ReleaseError, match=r"app/backdoor\.py not listed in manifest\.yml"):
        release.verify_bundle(str(bad))


def test_removed_file_is_refused(bundle, tmp_path):
    bad = repack(bundle, str(tmp_path / "bad.tar.gz"), lambda name, data: None if name == "docs/contact_list.md" else data)
    with pytest.raises(ReleaseError, match=r"document contact_list docs/contact_list\.md is listed .* missing from the bundle"):
        release.verify_bundle(bad)


def test_manifest_without_an_art9_document_is_refused_naming_it(bundle, tmp_path):
    def drop_doc(name, data):
        if name == "manifest.yml":
            manifest = yaml.safe_load(data)
            del manifest["documents"]["log_locations"]
            return yaml.safe_dump(manifest).encode()
        return None if name == "docs/log_locations.md" else data
    bad = repack(bundle, str(tmp_path / "bad.tar.gz"), drop_doc)
    with pytest.raises(ReleaseError, match=r"Art\. 9 document log_locations is not listed"):
        release.verify_bundle(bad)


def test_build_refuses_missing_document_and_missing_rollback_plan(tmp_path):
    docs = {doc: f"docs/{doc}.md" for doc in release.REQUIRED_DOCUMENTS if doc != "file_list"}
    with pytest.raises(ReleaseError, match=r"Art\. 9 document file_list is not listed"):
        release.build_bundle(str(make_source(tmp_path / "a", documents=docs)), str(tmp_path))
    with pytest.raises(ReleaseError, match=r"no rollback plan \(Art\. 28\)"):
        release.build_bundle(str(make_source(tmp_path / "b", rollback_plan=None)), str(tmp_path))
    with pytest.raises(ReleaseError, match=r"installation_manual.md is listed in release.yml but missing"):
        src = make_source(tmp_path / "c")
        (src / "docs" / "installation_manual.md").unlink()
        release.build_bundle(str(src), str(tmp_path))


def test_parameter_without_risk_grade_is_refused(tmp_path):
    src = make_source(tmp_path / "a", parameters=[{"name": "port", "default": 80}])
    with pytest.raises(ReleaseError, match=r"parameter port has risk grade None; Art\. 10\(2\)"):
        release.build_bundle(str(src), str(tmp_path))


def test_unsafe_member_path_and_garbage_are_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../etc/passwd")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ReleaseError, match="unsafe path"):
        release.verify_bundle(str(evil))
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(gzip.compress(b"not a tar"))
    with pytest.raises(ReleaseError, match="not a readable tarball|damaged"):
        release.verify_bundle(str(junk))
    with pytest.raises(ReleaseError, match="does not exist"):
        release.bundle_digest(str(tmp_path / "nope.tar.gz"))


def test_sample_application_bundles_build_and_verify(tmp_path):
    run = subprocess.run([sys.executable, str(SAMPLE / "build_bundles.py"), str(tmp_path)],
                         capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["version"] for line in lines] == ["1.0.0", "1.1.0", "1.2.0"]
    manifests = {line["version"]: release.verify_bundle(line["path"]) for line in lines}
    assert [e["path"] for e in manifests["1.1.0"]["data_scripts"]] == ["data/001_greeting.sql", "data/002_greeting_1_1.sql"]
    assert all(m["rollback_plan"]["path"] == "docs/rollback.md" for m in manifests.values())


def _get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("version,health", [("1.1.0", 200), ("1.2.0", 503)])
def test_sample_application_serves_version_and_1_2_0_fails_its_health_check(tmp_path, version, health):
    lines = subprocess.run([sys.executable, str(SAMPLE / "build_bundles.py"), str(tmp_path), "--versions", version],
                           capture_output=True, text=True, check=True).stdout
    with tarfile.open(json.loads(lines)["path"]) as tar:
        tar.extractall(tmp_path / "rel", filter="data")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "rel" / "config.ini").write_text(f"[app]\nlisten_address = 127.0.0.1\nlisten_port = {port}\ngreeting = hi\n")
    proc = subprocess.Popen([sys.executable, str(tmp_path / "rel" / "app" / "sampleapp.py")])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                status, body = _get(port, "/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "sampleapp did not start"
                time.sleep(0.1)
        assert status == health
        if health == 503:
            assert body["reason"] == "missing app/static/index.html"
        assert _get(port, "/version") == (200, {"system": "sampleapp", "version": version, "greeting": "hi"})
    finally:
        proc.terminate()
        proc.wait(5)
