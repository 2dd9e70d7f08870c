# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.hardware_check_compare: one host against its hardware class (Art. 7).

The decision lives in :func:`compare` (pure Python, unit-tested); the filter only adapts it.
"""
from __future__ import annotations

import re

# Jinja's own ``int`` (what ``| int`` did in the role): '2400.7' is 2400, anything unreadable 0
from jinja2.filters import do_int as to_int

DOCUMENTATION = r"""
name: hardware_check_compare
short_description: Compare what a host has with what its hardware class requires (Art. 7)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - Returns one row per declared key of the host's class (CPU count, MHz and model, memory,
    internal disks, NICs and their drivers, FC HBA ports, system model), each with the expected
    and the actual value and whether the host meets it, and the preparation checklist entries
    (Art. 7) built from those rows.
  - A host with no class, or a class not in O(classes), gives one C(host class) row that fails
    when O(require_class) is true and is not applicable otherwise.
positional: classes, require_class
options:
  _input:
    description: What the host has (C(hardware_check_actual)).
    type: dict
    required: true
  classes:
    description: The host classes (C(hardware_check_classes)); every key of a class is optional.
    type: dict
    required: true
  require_class:
    description: Whether a host without a class fails the check.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Compare this host with its class
  ansible.builtin.set_fact:
    __report: "{{ hardware_check_actual | prodgate.deploy.hardware_check_compare(hardware_check_classes, true) }}"
"""

RETURN = r"""
_value:
  description: C(rows) (check, expected, actual, ok) and C(checklist) (id, check, status, detail).
  type: dict
"""

NO_CLASS = "host class"


def _text(value):
    return "" if value is None else str(value)


def _row(check, expected, actual, ok):
    return {"check": check, "expected": expected, "actual": actual, "ok": bool(ok)}


def _at_least(check, spec, key, actual):
    return _row(check, f">= {spec[key]}", _text(actual), to_int(actual) >= to_int(spec[key]))


def compare(actual, classes, require_class=True):
    """The rows of expected against actual for one host; only the keys its class declares."""
    host_class = _text(actual.get("class"))
    spec = (classes or {}).get(host_class) if host_class else None
    if not host_class or spec is None:
        return [_row(NO_CLASS, "a class in hardware_check_classes", host_class or "none", not require_class)]
    rows = []
    if "cpu_count_min" in spec:
        rows.append(_at_least("CPU count", spec, "cpu_count_min", actual.get("cpu_count")))
    if "cpu_mhz_min" in spec:
        rows.append(_at_least("CPU MHz", spec, "cpu_mhz_min", actual.get("cpu_mhz")))
    if "cpu_model_pattern" in spec:
        model = _text(actual.get("cpu_model"))
        rows.append(_row("CPU model", f"~ {spec['cpu_model_pattern']}", model,
                         re.search(spec["cpu_model_pattern"], model)))
    if "memory_mb_min" in spec:
        rows.append(_at_least("memory MiB", spec, "memory_mb_min", actual.get("memory_mb")))
    if "disk_count_min" in spec or "disk_size_gb_min" in spec:
        count_min = spec.get("disk_count_min", 1)
        size_min = spec.get("disk_size_gb_min", 0)
        disks = actual.get("disks") or []
        big = [disk for disk in disks if to_int(disk["size_gb"]) >= to_int(size_min)]
        rows.append(_row("internal disks", f">= {count_min} x >= {size_min} GB",
                         ", ".join(f"{disk['name']} {disk['size_gb']} GB" for disk in disks) or "none",
                         len(big) >= to_int(count_min)))
    if "nic_count_min" in spec:
        nics = list(actual.get("nics") or [])
        rows.append(_row("NICs", f">= {spec['nic_count_min']}", f"{len(nics)} ({', '.join(nics)})",
                         len(nics) >= to_int(spec["nic_count_min"])))
    if "nic_driver_pattern" in spec:
        drivers = [_text(driver) for driver in actual.get("nic_drivers") or []]
        pattern = spec["nic_driver_pattern"]
        rows.append(_row("NIC drivers", f"all ~ {pattern}", ", ".join(drivers) or "none",
                         drivers and all(re.search(pattern, driver) for driver in drivers)))
    if "hba_count_min" in spec:
        rows.append(_at_least("FC HBA ports", spec, "hba_count_min", actual.get("hba_count")))
    if "product_pattern" in spec:
        product = _text(actual.get("product"))
        rows.append(_row("system model", f"~ {spec['product_pattern']}", product.strip(),
                         re.search(spec["product_pattern"], product)))
    return rows


def checklist(rows, require_class=True):
    """Art. 7 checklist entries: a host outside every class is not applicable unless a class is required."""
    entries = []
    for row in rows:
        if row["ok"]:
            status = "checked"
        elif require_class or row["check"] != NO_CLASS:
            status = "failed"
        else:
            status = "not_applicable"
        entries.append({"id": "a7_hardware", "check": row["check"], "status": status,
                        "detail": f"expected {row['expected']}, actual {row['actual']}"})
    return entries


def hardware_check_compare(actual, classes, require_class=True):
    rows = compare(actual, classes, require_class)
    return {"rows": rows, "checklist": checklist(rows, require_class)}


class FilterModule:
    def filters(self):
        return {"hardware_check_compare": hardware_check_compare}
