# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.hardware_check_table: expected against actual for every host (Art. 7).

The table and the list of mismatches are built by :func:`table` (pure Python, unit-tested).
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: hardware_check_table
short_description: The table of expected against actual hardware for every host of the play (Art. 7)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - Reads C(hardware_check_rows) and the class in C(hardware_check_actual) of every host named in
    O(hosts) and returns the lines of an aligned table (host, class, check, expected, actual,
    result) and one sentence per mismatch.
  - Hosts without C(hardware_check_rows) (they never got to the comparison) are left out.
positional: hosts
options:
  _input:
    description: The host variables of the play (C(hostvars)).
    type: dict
    required: true
  hosts:
    description: The hosts of the play, in the order of the table (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Build the table
  ansible.builtin.set_fact:
    __table: "{{ hostvars | prodgate.deploy.hardware_check_table(ansible_play_hosts_all) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: C(lines), the table with a header line, and C(mismatches), one sentence per row not met.
  type: dict
"""

_ACTUAL_WIDTH = 40
_LEEWAY = 5  # Jinja's truncate keeps a string up to 5 characters over the width


def _truncate(text, width=_ACTUAL_WIDTH, end="..."):
    if len(text) <= width + _LEEWAY:
        return text
    return text[:width - len(end)] + end


def table(reports):
    """``{'lines': [...], 'mismatches': [...]}`` for the hosts' reports."""
    width = max([len(str(report["host"])) for report in reports] + [4])
    fmt = "%-" + str(width) + "s  %-12s %-15s %-22s %-40s %s"
    lines = [fmt % ("host", "class", "check", "expected", "actual", "result")]
    mismatches = []
    for report in reports:
        rows = report.get("rows")
        if rows is None:
            continue
        for row in rows:
            lines.append(fmt % (report["host"], report.get("class") or "-", row["check"], row["expected"],
                                _truncate(str(row["actual"])), "ok" if row["ok"] else "MISMATCH"))
            if not row["ok"]:
                mismatches.append(f"{report['host']} {row['check']}: expected {row['expected']}, actual {row['actual']}")
    return {"lines": lines, "mismatches": mismatches}


def reports(hostvars, hosts):
    """The report of each host from its variables: name, class and rows (None before the comparison)."""
    found = []
    for name in hosts:
        host = hostvars[name]
        actual = host.get("hardware_check_actual") or {}
        found.append({"host": name, "class": actual.get("class"), "rows": host.get("hardware_check_rows")})
    return found


def hardware_check_table(hostvars, hosts):
    return table(reports(hostvars, hosts))


class FilterModule:
    def filters(self):
        return {"hardware_check_table": hardware_check_table}
