# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter prodgate.deploy.postgresql_standby_decide: what one host of a replication set must do.

The decision is :func:`decide` (pure Python, unit-tested); the role asserts on and acts on it.
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: postgresql_standby_decide
short_description: Decide whether a host of a PostgreSQL replication set is built, kept or left alone
version_added: "0.1.0"
author: prodgate contributors (@prodgate)
description:
  - From the replication set (M(ansible.builtin.set_fact) C(postgresql_standby_replication_set)),
    names the primary this host should follow, detects a split brain (two primaries of one cluster,
    one of them promoted once, timeline above 1) and decides the action.
  - C(check_pending) in check mode before any primary runs; C(none_primary) when this host is the
    only primary (after a switch-over); C(build) when a rebuild was asked for, this host is a
    second primary, holds another cluster than the primary, or does not run; C(none_member)
    otherwise (a running standby of the primary's cluster).
positional: host, rebuild, check_mode
options:
  _input:
    description: The replication set (C(hosts), C(primaries), C(standbys), C(down)).
    type: dict
    required: true
  host:
    description: This host (C(inventory_hostname)).
    type: str
    required: true
  rebuild:
    description: Whether a rebuild from the primary was asked for (C(postgresql_standby_rebuild)).
    type: bool
    default: false
  check_mode:
    description: Whether the play runs in check mode (C(ansible_check_mode)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Decide what to do
  ansible.builtin.set_fact:
    __decision: >-
      {{ postgresql_standby_replication_set
         | prodgate.deploy.postgresql_standby_decide(inventory_hostname, postgresql_standby_rebuild | bool, ansible_check_mode) }}
"""

RETURN = r"""
_value:
  description: C(self) (this host's state), C(upstream) (the other primaries), C(split_brain) and C(action).
  type: dict
"""


def _timeline(state):
    try:
        return int(state.get("timeline") or 0)
    except (TypeError, ValueError):
        return 0


def decide(replication_set, host, rebuild=False, check_mode=False):
    hosts = replication_set["hosts"]
    primaries = list(replication_set["primaries"])
    me = hosts[host]
    upstream = [name for name in primaries if name != host]
    leader = hosts[upstream[0]] if len(upstream) == 1 else {}
    # Two primaries of one cluster, one of them promoted once, is a split brain; the same identifier
    # on timeline 1 on both is two copies of one image that never replicated.
    split_brain = bool(host in primaries and len(upstream) == 1 and me.get("sysid")
                       and me.get("sysid") == leader.get("sysid")
                       and max(_timeline(me), _timeline(leader)) > 1)
    if check_mode and not primaries:
        action = "check_pending"
    elif not upstream:
        action = "none_primary"
    elif (rebuild or host in primaries or me.get("sysid") != hosts[upstream[0]].get("sysid")
          or not me.get("running")):
        action = "build"
    else:
        action = "none_member"
    return {"self": me, "upstream": upstream, "split_brain": split_brain, "action": action}


class FilterModule:
    def filters(self):
        return {"postgresql_standby_decide": decide}
