"""One version number for the collection and the `prodgate` command, checked; the command's
Python package depends only on what it imports (issue 12, Deliver 7)."""
import ast
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import ansible_collections.prodgate.deploy.plugins.plugin_utils as prodgate
from ansible_collections.prodgate.deploy.plugins.plugin_utils.collection_version import check_collection_version, find_collection, search_paths, VersionMismatch

REPO = Path(__file__).resolve().parents[4]
CORE = REPO / "plugins" / "plugin_utils"
PRODGATE = REPO / ".venv" / "bin" / "prodgate"


def galaxy_version():
    return str(yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["version"])


def installed_collection(root, version, manifest=True):
    path = root / "ansible_collections" / "prodgate" / "deploy"
    path.mkdir(parents=True)
    if manifest:
        (path / "MANIFEST.json").write_text(json.dumps({"collection_info": {"namespace": "prodgate", "name": "deploy", "version": version}}))
    else:
        (path / "galaxy.yml").write_text(f"namespace: prodgate\nname: deploy\nversion: {version}\n")
    return path


def test_one_version_number():
    assert prodgate.__version__ == galaxy_version()
    assert metadata.version("prodgate") == galaxy_version()


def test_the_checkout_is_the_collection_the_command_finds():
    root, version = find_collection({"ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections")}, cwd=str(REPO))
    assert Path(root).resolve() == REPO and version == galaxy_version()
    # Without the environment variable the checkout's ansible.cfg (collections_path = ./collections) says the same.
    root, _version = find_collection({"HOME": "/nonexistent"}, cwd=str(REPO))
    assert Path(root).resolve() == REPO


def test_another_version_is_refused_and_named(tmp_path):
    installed_collection(tmp_path, "9.9.9")
    with pytest.raises(VersionMismatch) as err:
        check_collection_version({"ANSIBLE_COLLECTIONS_PATH": str(tmp_path)}, cwd=str(tmp_path))
    message = str(err.value)
    assert f"prodgate {prodgate.__version__} refuses to work with collection prodgate.deploy 9.9.9" in message
    assert str(tmp_path / "ansible_collections" / "prodgate" / "deploy") in message
    assert "pip install 'prodgate==9.9.9'" in message


def test_same_version_from_galaxy_yml_and_first_path_wins(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    installed_collection(first, prodgate.__version__, manifest=False)
    installed_collection(second, "0.0.1")
    environ = {"ANSIBLE_COLLECTIONS_PATH": f"{first}{os.pathsep}{second}"}
    assert check_collection_version(environ, cwd=str(tmp_path))[1] == prodgate.__version__


def test_ansible_cfg_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "ansible.cfg").write_text("[defaults]\ncollections_path = ../colls\n")
    installed_collection(tmp_path / "colls", "9.9.9")
    environ = {"ANSIBLE_CONFIG": str(tmp_path / "cfg" / "ansible.cfg"), "HOME": str(tmp_path)}
    assert search_paths(environ, cwd=str(tmp_path))[0] == str(tmp_path / "colls")
    with pytest.raises(VersionMismatch):
        check_collection_version(environ, cwd=str(tmp_path))


def test_no_collection_found_is_fine(tmp_path):
    assert check_collection_version({"ANSIBLE_COLLECTIONS_PATH": str(tmp_path)}, cwd=str(tmp_path)) is None


def test_the_command_refuses_beside_another_collection_version(tmp_path):
    installed_collection(tmp_path, "9.9.9")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path), HOME=str(tmp_path))
    proc = subprocess.run([str(PRODGATE), "calendar", "is-working-day", "2025-10-08", "--json"], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "refuses to work with collection prodgate.deploy 9.9.9" in json.loads(proc.stdout)["error"]
    env["ANSIBLE_COLLECTIONS_PATH"] = str(REPO / "collections")
    proc = subprocess.run([str(PRODGATE), "calendar", "is-working-day", "2025-10-09"], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def _third_party_imports():
    """Non-standard-library modules the core and the CLI import: {module: {file: lazy}}.

    An import inside a function is lazy: optional, needed only by that function."""
    found = {}
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lazy_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names:
                    files = found.setdefault(top, {})
                    rel = path.relative_to(REPO).as_posix()
                    files[rel] = files.get(rel, True) and id(node) in lazy_nodes
    return found


def _requirements(extra=None):
    """Distribution names the prodgate package requires: unconditionally, or with ``extra`` ("*": any)."""
    wanted = set()
    for line in metadata.requires("prodgate") or []:
        spec, _sep, marker = line.partition(";")
        if (extra is None and not marker) or (extra == "*" and marker) or (extra not in (None, "*") and f'extra == "{extra}"' in marker):
            wanted.add(spec.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower())
    return wanted


def test_the_command_depends_only_on_what_it_imports():
    runtime, optional = _requirements(), _requirements("*")
    assert {"pyyaml", "cryptography"} <= runtime
    assert not runtime & {"ansible", "ansible-core", "ansible-runner", "jinja2", "psycopg"}, "controller packages belong in an extra"
    assert _requirements("postgresql") == {"psycopg"}
    distributions = metadata.packages_distributions()
    imported = _third_party_imports()
    assert "ansible" not in imported, f"the core imports Ansible: {imported.get('ansible')}"
    used = set()
    for module, files in imported.items():
        dists = {d.lower() for d in distributions.get(module, [])}
        eager = sorted(f for f, lazy in files.items() if not lazy)
        if eager:
            assert dists & runtime, f"{module} (imported by {eager}) is not a runtime dependency of the prodgate package"
        else:
            assert dists & (runtime | optional), f"{module} (imported lazily by {sorted(files)}) is declared nowhere in pyproject.toml"
        used |= dists
    # Every runtime dependency is imported somewhere: none is declared for nothing.
    assert runtime <= used, f"declared but never imported: {sorted(runtime - used)}"
