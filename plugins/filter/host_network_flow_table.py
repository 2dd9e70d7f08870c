# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.host_network_flow_table: the declared flows resolved into destinations and sources.

The resolution is :func:`flow_table` (pure Python, unit-tested); the filter reads the inventory for it.
"""
from __future__ import annotations

import re

DOCUMENTATION = r"""
name: host_network_flow_table
short_description: Resolve the declared network flows into one row per flow and destination host (Art. 6)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - Each flow of C(host_network_flows) names its destinations (C(to)) and sources (C(from)) as
    groups, hosts or addresses. Returns one row per flow and destination host with the port, the
    protocol (C(tcp) unless given), the source hosts, their addresses and the source networks.
  - A source host's address is its published C(host_network_identity.address), else its
    C(host_network_address). A name that is neither a group, a host nor an address (an empty or
    absent group) contributes nothing; C(any) accepts every source.
positional: groups, hostvars
options:
  _input:
    description: The declared flows (C(host_network_flows)), each with C(name), C(from), C(to), C(port) and optional C(proto).
    type: list
    elements: dict
    required: true
  groups:
    description: The inventory groups (C(groups)).
    type: dict
    required: true
  hostvars:
    description: The host variables (C(hostvars)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Resolve the declared flows
  ansible.builtin.set_fact:
    __flow_table: "{{ host_network_flows | prodgate.deploy.host_network_flow_table(groups, hostvars) }}"
"""

RETURN = r"""
_value:
  description: Rows with C(flow), C(destination), C(port), C(proto), C(source_hosts), C(sources), C(any) and C(cidrs).
  type: list
  elements: dict
"""

_ADDRESS = re.compile(r"^[0-9a-fA-F:.]+(/[0-9]+)?$")


def _names(value):
    return [value] if isinstance(value, str) else list(value or [])


def _unique(items):
    return list(dict.fromkeys(items))


def flow_table(flows, groups, hosts, address_of):
    """``hosts``: the inventory's host names; ``address_of(host)``: its address, '' when it has none."""
    rows = []
    for flow in flows:
        destinations = []
        for target in _names(flow["to"]):
            destinations.extend(groups[target] if target in groups else ([target] if target in hosts else []))
        source_hosts, source_cidrs = [], []
        for source in _names(flow["from"]):
            if source == "any":
                source_cidrs.append("any")
            elif source in groups:
                source_hosts.extend(groups[source])
            elif source in hosts:
                source_hosts.append(source)
            elif _ADDRESS.match(str(source)):
                source_cidrs.append(source)
        source_hosts = _unique(source_hosts)
        addresses = [address for address in (address_of(name) for name in source_hosts) if address]
        for destination in _unique(destinations):
            rows.append({"flow": flow["name"], "destination": destination, "port": int(flow["port"]),
                         "proto": flow.get("proto", "tcp"), "source_hosts": list(source_hosts),
                         "sources": _unique(addresses + source_cidrs), "any": "any" in source_cidrs,
                         "cidrs": [cidr for cidr in source_cidrs if cidr != "any"]})
    return rows


def host_network_flow_table(flows, groups, hostvars):
    def address_of(name):
        host = hostvars[name]
        identity = host.get("host_network_identity")
        if identity is not None:
            return identity["address"]
        return host.get("host_network_address", "")

    return flow_table(flows, groups, set(hostvars), address_of)


class FilterModule:
    def filters(self):
        return {"host_network_flow_table": host_network_flow_table}
