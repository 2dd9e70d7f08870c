# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.release_manifest: the core's manifest rule, for the release role (Art. 8-10, 28).

The rule is ``plugin_utils.governance.release.check_manifest`` and ``listed_files``, the same code
``prodgate release verify`` runs; this filter only adds the role's question (is the bundle for
the system this role deploys?) and turns a refusal into a value the role can assert on.
"""
from __future__ import annotations

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import release
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ReleaseError

DOCUMENTATION = r"""
name: release_manifest
short_description: Check a release bundle's manifest with the collection's release rules (Art. 8-10, 28)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - Applies the rules C(prodgate release verify) applies to a manifest (format, system id,
    version, artifacts, risk-graded parameters, the Art. 9 documents and the Art. 28 rollback
    plan), checks that the bundle is for O(system), and lists every file the manifest lists with
    its sha256.
  - It does not raise; a refusal is returned in C(problem) so that the role can stop with its own message.
positional: system
options:
  _input:
    description: The manifest read from the bundle (C(manifest.yml)).
    type: dict
    required: true
  system:
    description: The system id the role deploys (C(release_system)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the manifest
  ansible.builtin.set_fact:
    __checked: "{{ __release_manifest | prodgate.deploy.release_manifest(release_system) }}"
"""

RETURN = r"""
_value:
  description: >-
    C(problem) (empty when the manifest passes, else the reason), C(version), and C(listed):
    every file entry (C(path), C(sha256)) the manifest lists.
  type: dict
"""


def check(manifest, system):
    """``{'problem': '', 'version': ..., 'listed': [...]}``; ``problem`` names what the core or the role refused."""
    try:
        release.check_manifest(manifest)
        if manifest["system"] != system:
            raise ReleaseError(f"{release.MANIFEST}: the bundle is for system {manifest['system']}, "
                               f"this role deploys {system}")
        listed = []
        for section, entry in release.listed_files(manifest):
            if not isinstance(entry, dict) or not entry.get("path") or not entry.get("sha256"):
                raise ReleaseError(f"{release.MANIFEST}: {section} entry {entry!r} needs path and sha256")
            listed.append({"path": entry["path"], "sha256": entry["sha256"]})
    except ReleaseError as exc:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        return {"problem": str(exc), "version": version, "listed": []}
    return {"problem": "", "version": manifest["version"], "listed": listed}


class FilterModule:
    def filters(self):
        return {"release_manifest": check}
