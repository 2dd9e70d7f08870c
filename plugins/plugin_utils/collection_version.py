"""One version number for the collection and the `prodgate` command.

The collection's version is galaxy.yml's ``version`` (MANIFEST.json's once built and installed);
the core carries the same number as its ``__version__`` (the Python package's version is read
from it, and a unit test keeps galaxy.yml and it equal). The command refuses to work beside a
``prodgate.deploy`` of another version: both read and write the same register, approvals and
policy, and a register written by one release and verified by another is a question nobody should
have to answer during a change.

:func:`find_collection` looks where ansible-playbook would: ``ANSIBLE_COLLECTIONS_PATH``, else
``collections_path`` of the ansible.cfg Ansible would read, else Ansible's default paths; then the
Python path (collections installed with the ``ansible`` package).
"""
import configparser
import json
import os
import sys

import yaml

from . import __version__
from .errors import ProdgateError

NAMESPACE, NAME = "prodgate", "deploy"
DEFAULT_PATHS = ("~/.ansible/collections", "/usr/share/ansible/collections")


class VersionMismatch(ProdgateError):
    """The prodgate command and the prodgate.deploy collection are of different releases."""


def _ansible_cfg(environ, cwd):
    """The ansible.cfg Ansible would read (same order as Ansible's), or None."""
    named = environ.get("ANSIBLE_CONFIG")
    candidates = []
    if named:
        named = os.path.expanduser(named)
        candidates.append(os.path.join(named, "ansible.cfg") if os.path.isdir(named) else named)
    candidates += [os.path.join(cwd, "ansible.cfg"), os.path.expanduser("~/.ansible.cfg"), "/etc/ansible/ansible.cfg"]
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


def _paths_from_cfg(path):
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    for key in ("collections_path", "collections_paths"):
        value = parser.get("defaults", key, fallback=None)
        if value:
            base = os.path.dirname(os.path.abspath(path))
            return [os.path.normpath(os.path.join(base, os.path.expanduser(p.strip())))
                    for p in value.split(os.pathsep) if p.strip()]
    return None


def search_paths(environ=None, cwd=None):
    """The collection roots ansible-playbook would search, in its order."""
    environ = os.environ if environ is None else environ
    cwd = os.getcwd() if cwd is None else cwd
    configured = environ.get("ANSIBLE_COLLECTIONS_PATH") or environ.get("ANSIBLE_COLLECTIONS_PATHS")
    if configured:
        paths = [os.path.expanduser(p) for p in configured.split(os.pathsep) if p]
    else:
        cfg = _ansible_cfg(environ, cwd)
        paths = (_paths_from_cfg(cfg) if cfg else None) or [os.path.expanduser(p) for p in DEFAULT_PATHS]
    return paths + [p for p in sys.path if p and os.path.isdir(os.path.join(p, "ansible_collections"))]


def collection_version(root):
    """Version of the collection at ``root`` (MANIFEST.json when installed, galaxy.yml in a checkout)."""
    manifest = os.path.join(root, "MANIFEST.json")
    try:
        if os.path.isfile(manifest):
            with open(manifest, "r", encoding="utf-8") as handle:
                return str(json.load(handle)["collection_info"]["version"])
        with open(os.path.join(root, "galaxy.yml"), "r", encoding="utf-8") as handle:
            return str(yaml.safe_load(handle)["version"])
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise VersionMismatch(f"collection {NAMESPACE}.{NAME} at {root} has no readable version "
                              f"(MANIFEST.json or galaxy.yml): {exc}; reinstall it") from exc


def _own_core(root):
    """True for the tree the ``prodgate`` wheel installs: the core alone at the collection's import name
    (no galaxy.yml, no MANIFEST.json). It is this command's own code, so of its version by construction."""
    own = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bare = not any(os.path.isfile(os.path.join(root, f)) for f in ("MANIFEST.json", "galaxy.yml"))
    return bare and os.path.realpath(root) == os.path.realpath(own)


def find_collection(environ=None, cwd=None):
    """(root, version) of the prodgate.deploy that ansible-playbook would load, or None."""
    for path in search_paths(environ, cwd):
        base = path if os.path.basename(os.path.normpath(path)) == "ansible_collections" else os.path.join(path, "ansible_collections")
        root = os.path.join(base, NAMESPACE, NAME)
        if os.path.isdir(root) and not _own_core(root):
            return root, collection_version(root)
    return None


def check_collection_version(environ=None, cwd=None, version=__version__):
    """Raise VersionMismatch when the collection found is of another version than this command."""
    found = find_collection(environ, cwd)
    if found is None:
        return None
    root, other = found
    if other != version:
        raise VersionMismatch(
            f"prodgate {version} refuses to work with collection {NAMESPACE}.{NAME} {other} at {root}: "
            f"install the matching pair (pip install 'prodgate=={other}', or "
            f"ansible-galaxy collection install {NAMESPACE}.{NAME}:=={version})")
    return found
