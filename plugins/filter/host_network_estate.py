# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.host_network_estate: the estate's hosts with their names and addresses (Art. 6).

The listing is :func:`estate` (pure Python, unit-tested); the filter reads the inventory for it.
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: host_network_estate
short_description: The estate's hosts with host name, FQDN and address, for /etc/hosts (Art. 6)
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - A host of the play has published C(host_network_identity); a host outside the play is taken
    from the inventory (C(host_network_hostname), else the first label of its inventory name, and
    C(host_network_address)), its FQDN in O(domain). Hosts without an address are left out.
positional: hostvars, domain
options:
  _input:
    description: The estate's host names (the members of C(host_network_estate_group)).
    type: list
    elements: str
    required: true
  hostvars:
    description: The host variables (C(hostvars)).
    type: dict
    required: true
  domain:
    description: The DNS domain (C(host_network_domain)); empty for none.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: List the estate's hosts
  ansible.builtin.set_fact:
    __estate: "{{ groups['all'] | prodgate.deploy.host_network_estate(hostvars, host_network_domain) }}"
"""

RETURN = r"""
_value:
  description: C(hostname), C(fqdn) and C(address) of each host of the estate that has an address.
  type: list
  elements: dict
"""


def identity_of(name, variables, domain=""):
    """The published identity, or the one the inventory gives a host outside the play."""
    if variables.get("host_network_identity") is not None:
        return variables["host_network_identity"]
    hostname = variables.get("host_network_hostname", name.split(".")[0])
    return {"hostname": hostname, "address": variables.get("host_network_address", ""),
            "fqdn": f"{hostname}.{domain}" if domain else str(hostname)}


def estate(names, hostvars, domain=""):
    found = []
    for name in names:
        identity = identity_of(name, hostvars[name], domain or "")
        if identity["address"]:
            found.append(identity)
    return found


class FilterModule:
    def filters(self):
        return {"host_network_estate": estate}
