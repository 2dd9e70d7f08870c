# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.host_network_probes: what one host must and must not reach (Art. 6).

The choice of probes is :func:`probes` (pure Python, unit-tested); the filter reads the play's hosts.
"""
from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

DOCUMENTATION = r"""
name: host_network_probes
short_description: The flow probes one host runs against the other hosts of the play (Art. 6)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - For every other host of the play and every TCP port the flow table declares on it, one probe
    that expects C(reach) when this host is a declared source (or the flow accepts any source),
    and C(dropped) when it is not and the destination enforces its firewall.
  - A port opened to source networks only (CIDRs) is not probed from an undeclared host, since
    this host may sit inside such a network.
positional: host, play_hosts, hostvars
options:
  _input:
    description: The flow table (from P(prodgate.deploy.host_network_flow_table#filter)).
    type: list
    elements: dict
    required: true
  host:
    description: The probing host (C(inventory_hostname)).
    type: str
    required: true
  play_hosts:
    description: The hosts of the play (C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  hostvars:
    description: The host variables (C(hostvars)), for each destination's address and firewall enforcement.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Work out what this host must and must not reach
  ansible.builtin.set_fact:
    __probes: >-
      {{ __flow_table | prodgate.deploy.host_network_probes(inventory_hostname, ansible_play_hosts, hostvars) }}
"""

RETURN = r"""
_value:
  description: Probes with C(destination), C(address), C(port), C(expect) (reach or dropped) and C(flows).
  type: list
  elements: dict
"""


def _unique(items):
    return list(dict.fromkeys(items))


def probes(table, host, play_hosts, destinations):
    """``destinations``: host -> {'address': ..., 'enforced': bool} for the play's hosts."""
    found = []
    for destination in play_hosts:
        if destination == host:
            continue
        rows = [row for row in table if row["destination"] == destination and row["proto"] == "tcp"]
        for port in _unique(row["port"] for row in rows):
            port_rows = [row for row in rows if row["port"] == port]
            allowed = (any(row["any"] for row in port_rows)
                       or any(host in row["source_hosts"] for row in port_rows))
            by_cidr = any(row["cidrs"] for row in port_rows)
            if allowed or (destinations[destination]["enforced"] and not by_cidr):
                address = destinations[destination]["address"]
                if not address:
                    raise ValueError(f"{destination} has no published host_network_identity address: run the role's "
                                     f"set_vars on every host of the play before probing the flows")
                found.append({"destination": destination, "address": address,
                              "port": port, "expect": "reach" if allowed else "dropped",
                              "flows": ", ".join(_unique(row["flow"] for row in port_rows))})
    return found


def host_network_probes(table, host, play_hosts, hostvars):
    destinations = {}
    for name in play_hosts:
        if name == host:
            continue
        other = hostvars[name]
        destinations[name] = {"address": (other.get("host_network_identity") or {}).get("address"),
                              "enforced": boolean(other.get("__host_network_firewall_enforced", False), strict=False)}
    return probes(table, host, play_hosts, destinations)


class FilterModule:
    def filters(self):
        return {"host_network_probes": host_network_probes}
