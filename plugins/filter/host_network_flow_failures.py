# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.host_network_flow_failures: the probes whose result is not as declared (Art. 6).

The verdict is :func:`flow_failures` (pure Python, unit-tested).
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: host_network_flow_failures
short_description: The flow probes whose result is not what the declaration says (Art. 6)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - A probe that expects C(reach) passes when the connection opened or was refused (the port is
    let through the firewall, nothing listens yet); one that expects C(dropped) passes only when
    the connection attempt was dropped. Returns one sentence per probe that did not pass.
positional: host
options:
  _input:
    description: The probes with their C(result) and C(detail), as printed by the role's flow probe.
    type: list
    elements: dict
    required: true
  host:
    description: The probing host (C(inventory_hostname)), named in each sentence.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Record the flow checks
  ansible.builtin.set_fact:
    __failures: "{{ __probed | prodgate.deploy.host_network_flow_failures(inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: One sentence per failed probe (source, destination, port, flows, expected and got).
  type: list
  elements: str
"""

REACHED = ("open", "refused")


def passed(probe):
    return probe["result"] in REACHED if probe["expect"] == "reach" else probe["result"] == "dropped"


def flow_failures(probed, host):
    failures = []
    for probe in probed:
        if passed(probe):
            continue
        detail = probe.get("detail")
        failures.append(f"{host} -> {probe['destination']}:{probe['port']} ({probe['flows']}) expected "
                        f"{probe['expect']}, got {probe['result']}" + (f" {detail}" if detail else ""))
    return failures


class FilterModule:
    def filters(self):
        return {"host_network_flow_failures": flow_failures}
