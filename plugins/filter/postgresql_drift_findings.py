# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.postgresql_drift_findings: what differs between the hosts of a replication set (Art. 31).

The comparison is :func:`findings` (pure Python, unit-tested); the filter reads each host's collected state.
"""
from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

DOCUMENTATION = r"""
name: postgresql_drift_findings
short_description: The differences between the collected states of the hosts of a replication set (Art. 31)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - For every enabled area (C(packages), C(parameters) and C(os), mappings of name to value;
    C(hba), a list of rules), compares the hosts' C(postgresql_drift_state) and returns one
    finding per item whose value is not the same on every host, with the value on each host.
  - A mapping key missing on a host has the value C((missing)); an C(hba) rule is C(present) or
    C(absent) on each host. Mapping keys are reported in case-insensitive order, rules in the
    order they first appear. Values are compared exactly (C(on) and C(ON) differ).
positional: hosts, hostvars
options:
  _input:
    description: The areas, each mapped to whether it is compared (C(__postgresql_drift_areas)).
    type: dict
    required: true
  hosts:
    description: The hosts to compare (C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  hostvars:
    description: The host variables (C(hostvars)), each host with its C(postgresql_drift_state).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Compare every host with the others
  ansible.builtin.set_fact:
    postgresql_drift_findings: "{{ __postgresql_drift_areas | prodgate.deploy.postgresql_drift_findings(ansible_play_hosts, hostvars) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: Findings with C(area), C(item) and C(values) (host -> value).
  type: list
  elements: dict
"""

MISSING = "(missing)"


def _differs(values):
    first = next(iter(values.values()), None)
    return any(value != first for value in values.values())


def _rules(state):
    """HBA rules as lines: a rule that spans lines counts line by line."""
    return "\n".join(str(rule) for rule in state).split("\n")


def findings(areas, states):
    """``areas``: area -> whether it is compared; ``states``: host -> collected state, in report order."""
    found = []
    hosts = list(states)
    for area, enabled in areas.items():
        if not enabled:
            continue
        per_host = [states[host][area] for host in hosts]
        if area == "hba":
            per_host = [_rules(state) for state in per_host]
            items = list(dict.fromkeys(line for rules in per_host for line in rules))
            for line in items:
                values = {host: "present" if line in per_host[index] else "absent" for index, host in enumerate(hosts)}
                if _differs(values):
                    found.append({"area": area, "item": line, "values": values})
        else:
            keys = sorted(dict.fromkeys(key for state in per_host for key in state), key=lambda key: str(key).lower())
            for key in keys:
                values = {host: per_host[index].get(key, MISSING) for index, host in enumerate(hosts)}
                if _differs(values):
                    found.append({"area": area, "item": key, "values": values})
    return found


def postgresql_drift_findings(areas, hosts, hostvars):
    enabled = {area: boolean(value, strict=False) for area, value in areas.items()}  # as `| bool` reads them
    return findings(enabled, {host: hostvars[host]["postgresql_drift_state"] for host in hosts})


class FilterModule:
    def filters(self):
        return {"postgresql_drift_findings": postgresql_drift_findings}
