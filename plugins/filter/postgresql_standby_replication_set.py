# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.postgresql_standby_replication_set: who is primary, who follows, who is down.

The replication set is read from the peers' probes by :func:`replication_set` (pure Python,
unit-tested); the filter only takes the probes and the peers' addresses out of Ansible's variables.
"""
from __future__ import annotations

import json

DOCUMENTATION = r"""
name: postgresql_standby_replication_set
short_description: The replication set of a PostgreSQL primary and its standbys, from the peers' probes
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - Takes the results of the role's probe loop (one JSON line per peer, C(running), C(in_recovery),
    C(sysid), C(timeline), C(fenced)) and returns every peer's state with its address and whether
    it was reachable, and the lists of primaries (running, not in recovery), standbys (running, in
    recovery) and hosts that are down, in the order of the peers.
  - A peer that answered nothing (unreachable, or no PostgreSQL) counts as not running.
positional: hostvars
options:
  _input:
    description: The C(results) of the registered probe loop (C(item), C(stdout), C(unreachable)).
    type: list
    elements: dict
    required: true
  hostvars:
    description: The host variables (C(hostvars)), for each peer's C(postgresql_address) or default IPv4 address.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Publish the replication set
  ansible.builtin.set_fact:
    postgresql_standby_replication_set: "{{ __probe.results | prodgate.deploy.postgresql_standby_replication_set(hostvars) }}"
"""

RETURN = r"""
_value:
  description: C(hosts) (peer -> state, reachable, address), C(primaries), C(standbys) and C(down).
  type: dict
"""

SILENT = {"running": False, "in_recovery": False, "sysid": "", "timeline": 0, "fenced": False}


def probe_state(stdout):
    """What one probe line says; a peer that printed nothing is a silent, stopped host."""
    text = stdout or ""
    if not text.startswith("{"):
        return dict(SILENT)
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the standby probe printed a line that is not JSON ({exc}): {text[:200]!r}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"the standby probe printed {text[:200]!r}, expected a JSON object")
    return state


def replication_set(probes, addresses):
    """``probes``: (peer, stdout, unreachable) in peer order; ``addresses``: peer -> address."""
    hosts = {}
    for peer, stdout, unreachable in probes:
        state = probe_state(stdout)
        state.update({"reachable": not unreachable, "address": addresses.get(peer, "")})
        hosts[peer] = state
    return {
        "hosts": hosts,
        "primaries": [name for name, state in hosts.items() if state.get("running") and not state.get("in_recovery")],
        "standbys": [name for name, state in hosts.items() if state.get("running") and state.get("in_recovery")],
        "down": [name for name, state in hosts.items() if not state.get("running")],
    }


def _address(host):
    if host.get("postgresql_address") is not None:
        return host["postgresql_address"]
    facts = host.get("ansible_facts") or {}
    return (facts.get("default_ipv4") or {}).get("address", "")


def postgresql_standby_replication_set(results, hostvars):
    probes, addresses = [], {}
    for result in results:
        peer = result["item"]
        probes.append((peer, result.get("stdout", ""), bool(result.get("unreachable", False))))
        addresses[peer] = _address(hostvars[peer])
    return replication_set(probes, addresses)


class FilterModule:
    def filters(self):
        return {"postgresql_standby_replication_set": postgresql_standby_replication_set}
