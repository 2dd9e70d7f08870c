#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: release_verify
short_description: Verify a release bundle on the controller and that it is the approved one (Art. 8-10, 28)
version_added: "0.1.0"
description:
  - Checks the release bundle (built by C(prodgate release build)) against its manifest. Every file
    is listed and unaltered, no file is missing from the manifest, the Art. 9 documents and the Art. 28
    rollback plan are present, configuration parameters are graded by risk (Art. 10(2)).
  - Then checks that the bundle's sha256 is the approved digest, the one the change's approvals sign.
  - A refusal names what is wrong (the altered or missing file, the missing document, the two digests).
  - Runs once on the controller, in the collection itself (no C(prodgate) program is needed, so it
    works in an AWX execution environment); the rule is in C(plugins/plugin_utils/governance/release.py),
    shared with C(prodgate release verify).
author:
  - prodgate maintainers (@prodgate)
options:
  bundle:
    description: The bundle tarball on the controller.
    type: path
    required: true
  sha256:
    description: The approved sha256 of the bundle (64 lower-case hexadecimal digits), as the approvals sign it.
    type: str
    required: true
attributes:
  action:
    description: Runs on the controller as an action plugin.
    support: full
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  platform:
    description: Runs on the controller.
    support: full
    platforms: all
seealso:
  - module: prodgate.deploy.approval_gate
"""

EXAMPLES = r"""
- name: Verify the bundle on the controller before any change
  prodgate.deploy.release_verify:
    bundle: /srv/releases/sampleapp-1.1.0.tar.gz
    sha256: "{{ delivery_bundle_sha256 }}"
  register: verified
  run_once: true

- name: Keep the verified manifest for later tasks
  ansible.builtin.set_fact:
    delivery_manifest: "{{ verified.manifest }}"
"""

RETURN = r"""
bundle:
  description: The bundle verified.
  returned: success
  type: str
sha256:
  description: Its sha256 (equal to the approved digest).
  returned: success
  type: str
system:
  description: The system id in the manifest.
  returned: success
  type: str
version:
  description: The release version in the manifest.
  returned: success
  type: str
artifacts:
  description: How many artifacts the bundle carries.
  returned: success
  type: int
data_scripts:
  description: The DML data-initialisation scripts (Art. 10(3)), in order.
  returned: success
  type: list
  elements: str
migrations:
  description: The schema migrations, in order.
  returned: success
  type: list
  elements: str
parameters:
  description: Configuration parameter names and their Art. 10(2) risk grades.
  returned: success
  type: dict
documents:
  description: The Art. 9 documents listed.
  returned: success
  type: list
  elements: str
rollback_plan:
  description: Path of the Art. 28 rollback plan in the bundle.
  returned: success
  type: str
manifest:
  description: The verified manifest (for the data scripts and the release role).
  returned: success
  type: dict
"""
