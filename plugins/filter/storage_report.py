# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.storage_report: declared mounts against what the host has (Art. 6).

The comparison is :func:`report` (pure Python, unit-tested); the filter adapts the registered results.
"""
from __future__ import annotations

import json

# Jinja's own ``int`` (what ``| int`` did in the role): unreadable is 0
from jinja2.filters import do_int as to_int

DOCUMENTATION = r"""
name: storage_report
short_description: Compare the declared mounts with the live ones and name every drift (Art. 6)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - For each declared mount, reads the C(findmnt --json --bytes) result and the mount point's
    M(ansible.builtin.stat) result and names every drift; not mounted, another filesystem type,
    a declared option missing (options with C(=), C(bind) and O(ignored_opts) aside), size or
    free space below the declared minimum (MiB or percent), owner, group or mode not as declared.
positional: live, stats, ignored_opts
options:
  _input:
    description: The declared mounts (C(storage_mounts)).
    type: list
    elements: dict
    required: true
  live:
    description: The C(results) of the registered findmnt loop, one per declared mount (C(rc), C(stdout)).
    type: list
    elements: dict
    required: true
  stats:
    description: The C(results) of the registered stat loop, one per declared mount.
    type: list
    elements: dict
    required: true
  ignored_opts:
    description: Mount options that are never compared (the kernel does not show them).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Compare declared and live properties
  ansible.builtin.set_fact:
    storage_report: >-
      {{ storage_mounts | prodgate.deploy.storage_report(__storage_live.results, __storage_stat.results, ['defaults']) }}
"""

RETURN = r"""
_value:
  description: One entry per declared mount with C(path), C(managed), C(fstype), C(options), C(size_mb), C(free_mb) and C(drift).
  type: list
  elements: dict
"""

MIB = 1048576


def live_filesystem(result):
    """The filesystem findmnt reports for one mount point, or {} when nothing is mounted there."""
    if result.get("rc") != 0 or not result.get("stdout"):
        return {}
    return json.loads(result["stdout"])["filesystems"][0]


def drift_of(declared, fs, stat, ignored_opts):
    drift = []
    if not fs:
        drift.append("not mounted")
    else:
        live_opts = fs["options"].split(",")
        if "fstype" in declared and declared["fstype"] not in ("none", fs["fstype"]):
            drift.append(f"fstype {fs['fstype']}, declared {declared['fstype']}")
        for opt in declared.get("opts") or []:
            if opt in ignored_opts or opt == "bind" or "=" in opt:
                continue
            if opt not in live_opts:
                drift.append(f"option {opt} missing (live: {fs['options']})")
        size, avail = to_int(fs.get("size")), to_int(fs.get("avail"))
        size_mb, free_mb = size // MIB, avail // MIB
        free_pct = avail * 100 // size if size > 0 else 0
        if "min_size_mb" in declared and size_mb < to_int(declared["min_size_mb"]):
            drift.append(f"size {size_mb} MiB < {declared['min_size_mb']} MiB")
        if "min_free_mb" in declared and free_mb < to_int(declared["min_free_mb"]):
            drift.append(f"free {free_mb} MiB < {declared['min_free_mb']} MiB")
        if "min_free_pct" in declared and free_pct < to_int(declared["min_free_pct"]):
            drift.append(f"free {free_pct}% < {declared['min_free_pct']}%")
    if stat.get("exists", False):
        for key, live_key in (("owner", "pw_name"), ("group", "gr_name"), ("mode", "mode")):
            if key in declared and stat.get(live_key) != declared[key]:
                drift.append(f"{key} {stat.get(live_key)}, declared {declared[key]}")
    return drift


def report(mounts, live, stats, ignored_opts=()):
    entries = []
    for declared, live_run, stat_run in zip(mounts, live, stats):
        fs = live_filesystem(live_run)
        entries.append({"path": declared["path"], "managed": declared.get("manage", True),
                        "fstype": fs.get("fstype", ""), "options": fs.get("options", ""),
                        "size_mb": to_int(fs.get("size", 0)) // MIB, "free_mb": to_int(fs.get("avail", 0)) // MIB,
                        "drift": drift_of(declared, fs, stat_run.get("stat") or {}, list(ignored_opts or []))})
    return entries


class FilterModule:
    def filters(self):
        return {"storage_report": report}
