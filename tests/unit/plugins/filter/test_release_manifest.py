"""The release role checks a manifest with the core's rule (plugin_utils/governance/release.py), not a copy."""
import copy

import pytest

from ansible_collections.prodgate.deploy.plugins.filter.release_manifest import check
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import release

SHA = "a" * 64


def _entry(path):
    return {"path": path, "sha256": SHA}


MANIFEST = {
    "format": release.FORMAT, "system": "sampleapp", "version": "1.1.0", "description": "",
    "parameters": [{"name": "port", "default": 8080, "risk": "medium"}],
    "documents": {doc: _entry(f"docs/{doc}.md") for doc in release.REQUIRED_DOCUMENTS},
    "artifacts": [_entry("app/sampleapp.py")], "data_scripts": [_entry("data/001_seed.sql")], "migrations": [],
    "rollback_plan": _entry("docs/rollback.md"),
}


def test_a_good_manifest_lists_every_file_once_with_its_digest():
    result = check(copy.deepcopy(MANIFEST), "sampleapp")
    assert result["problem"] == ""
    assert result["version"] == "1.1.0"
    paths = [entry["path"] for entry in result["listed"]]
    assert paths[:2] == ["app/sampleapp.py", "data/001_seed.sql"]
    assert paths[-1] == "docs/rollback.md"
    assert len(paths) == 2 + len(release.REQUIRED_DOCUMENTS) + 1
    assert all(entry == {"path": entry["path"], "sha256": SHA} for entry in result["listed"])


@pytest.mark.parametrize("change,reason", [
    ({"system": "othersys"}, "the bundle is for system othersys, this role deploys sampleapp"),
    ({"version": "../1.0"}, "version '../1.0' is missing or invalid"),
    ({"rollback_plan": None}, "no rollback plan (Art. 28)"),
    ({"documents": {}}, "Art. 9 document installation_manual is not listed"),
    ({"parameters": [{"name": "port", "risk": "none"}]}, "risk grade 'none'"),
    ({"artifacts": []}, "no artifacts (Art. 8)"),
    ({"format": "something/0"}, "format is 'something/0'"),
    ({"data_scripts": [{"path": "data/x.sql"}]}, "data_scripts entry {'path': 'data/x.sql'} needs path and sha256"),
])
def test_a_manifest_the_core_refuses_is_refused_with_the_cores_reason(change, reason):
    manifest = dict(copy.deepcopy(MANIFEST), **change)
    result = check(manifest, "sampleapp")
    assert result["listed"] == []
    assert result["problem"]
    assert reason in result["problem"]


def test_the_role_refuses_exactly_what_prodgate_release_verify_refuses():
    for change in ({"version": ""}, {"system": "Bad System"}, {"documents": {"file_list": _entry("x")}}):
        manifest = dict(copy.deepcopy(MANIFEST), **change)
        with pytest.raises(release.ReleaseError) as refused:
            release.check_manifest(manifest)
        assert check(manifest, manifest.get("system"))["problem"] == str(refused.value)


def test_not_a_mapping_is_refused():
    assert check(["x"], "sampleapp")["problem"] == "manifest.yml must be a mapping"
