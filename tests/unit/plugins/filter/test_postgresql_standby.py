"""Replication set and the standby decision: primary, standbys, split brain, what each host does."""
import json

import pytest

from ansible_collections.prodgate.deploy.plugins.filter.postgresql_standby_decide import decide
from ansible_collections.prodgate.deploy.plugins.filter.postgresql_standby_replication_set import (
    postgresql_standby_replication_set, replication_set)


def _probe(running=True, in_recovery=False, sysid="7300", timeline=1, fenced=False):
    return json.dumps({"running": running, "in_recovery": in_recovery, "sysid": sysid, "timeline": timeline,
                       "fenced": fenced})


def _set(**states):
    return replication_set([(name, stdout, False) for name, stdout in states.items()], {})


def test_probes_become_primaries_standbys_and_down_in_peer_order():
    results = [
        {"item": "db2", "stdout": _probe(in_recovery=True)},
        {"item": "db1", "stdout": _probe()},
        {"item": "db3", "unreachable": True, "msg": "no route"},
        {"item": "db4", "stdout": ""},
    ]
    hostvars = {"db1": {"postgresql_address": "10.0.0.1"},
                "db2": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.2"}}},
                "db3": {"ansible_facts": {}}, "db4": {}}
    result = postgresql_standby_replication_set(results, hostvars)
    assert result["primaries"] == ["db1"]
    assert result["standbys"] == ["db2"]
    assert result["down"] == ["db3", "db4"]
    assert list(result["hosts"]) == ["db2", "db1", "db3", "db4"]
    assert result["hosts"]["db1"]["address"] == "10.0.0.1"
    assert result["hosts"]["db2"]["address"] == "10.0.0.2"
    assert result["hosts"]["db3"] == {"running": False, "in_recovery": False, "sysid": "", "timeline": 0,
                                      "fenced": False, "reachable": False, "address": ""}
    assert result["hosts"]["db4"]["reachable"] is True


def test_a_probe_line_that_is_not_json_stops_with_the_line():
    with pytest.raises(ValueError, match="not JSON"):
        replication_set([("db1", "{broken", False)], {})


def test_a_standby_of_the_primarys_cluster_is_left_streaming():
    rs = _set(db1=_probe(), db2=_probe(in_recovery=True))
    assert decide(rs, "db2") == {"self": rs["hosts"]["db2"], "upstream": ["db1"], "split_brain": False,
                                 "action": "none_member"}


@pytest.mark.parametrize("state,rebuild", [
    (_probe(in_recovery=True), True),                     # asked for
    (_probe(in_recovery=True, sysid="9999"), False),      # another cluster
    (_probe(running=False, in_recovery=False), False),    # not running
])
def test_a_host_is_built_when_asked_of_another_cluster_or_stopped(state, rebuild):
    rs = _set(db1=_probe(), db2=state)
    assert decide(rs, "db2", rebuild=rebuild)["action"] == "build"


def test_two_primaries_of_one_cluster_after_a_promotion_is_a_split_brain():
    rs = _set(db1=_probe(timeline=1), db2=_probe(timeline=2))
    decision = decide(rs, "db2")
    assert decision["split_brain"] is True
    assert decision["upstream"] == ["db1"]


def test_two_copies_of_one_image_that_never_replicated_are_not_a_split_brain_and_one_is_built():
    rs = _set(db1=_probe(), db2=_probe())
    decision = decide(rs, "db2")
    assert decision["split_brain"] is False
    assert decision["action"] == "build"


def test_the_only_primary_stays_and_check_mode_waits_for_a_primary():
    rs = _set(db1=_probe(running=False), db2=_probe())
    assert decide(rs, "db2")["action"] == "none_primary"
    assert decide(rs, "db1")["action"] == "build"
    nothing = _set(db1=_probe(running=False), db2=_probe(running=False))
    assert decide(nothing, "db2", check_mode=True)["action"] == "check_pending"
    assert decide(nothing, "db2")["action"] == "none_primary"
    assert decide(nothing, "db2")["upstream"] == []
