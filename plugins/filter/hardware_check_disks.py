# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.hardware_check_disks: the internal disks a host has, from its device facts (Art. 7).

The selection is :func:`disks` (pure Python, unit-tested); the role compares them with the host class.
"""
from __future__ import annotations

import re

# Jinja's own filters (what `| int` and `| round(0)` did in the role)
from jinja2.filters import do_int, do_round

DOCUMENTATION = r"""
name: hardware_check_disks
short_description: The internal disks of a host with their size in GB, from its device facts (Art. 7)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - Takes C(ansible_facts['devices']) and returns, sorted by device name, every block device whose
    name does not match O(not_disks) (loop, RAM, device-mapper, software RAID, optical...) and whose
    size rounds to at least 1 GB (10^9 bytes, from the sector count and sector size).
positional: not_disks
options:
  _input:
    description: The device facts (C(ansible_facts['devices'])).
    type: dict
    required: true
  not_disks:
    description: A regular expression matched at the start of the names of block devices that are not internal disks.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: List the internal disks
  ansible.builtin.set_fact:
    __disks: "{{ ansible_facts['devices'] | prodgate.deploy.hardware_check_disks('^(loop|ram|dm-|md|sr)') }}"
"""

RETURN = r"""
_value:
  description: C(name), C(size_gb) and C(model) of each internal disk.
  type: list
  elements: dict
"""


def disks(devices, not_disks):
    found = []
    for name in sorted(devices, key=lambda key: str(key).lower()):
        if re.match(not_disks, name):
            continue
        device = devices[name] or {}
        size_bytes = do_int(device.get("sectors")) * do_int(device.get("sectorsize", 512))
        size_gb = do_int(do_round(size_bytes / 1000000000, 0))
        if size_gb > 0:
            found.append({"name": name, "size_gb": size_gb, "model": device.get("model") or ""})
    return found


class FilterModule:
    def filters(self):
        return {"hardware_check_disks": disks}
