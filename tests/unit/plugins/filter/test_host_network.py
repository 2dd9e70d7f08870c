"""Host network (Art. 6): declared flows resolved, the probes each host runs, the verdict, the estate."""
import pytest

from ansible_collections.prodgate.deploy.plugins.filter.host_network_estate import estate
from ansible_collections.prodgate.deploy.plugins.filter.host_network_flow_failures import flow_failures
from ansible_collections.prodgate.deploy.plugins.filter.host_network_flow_table import host_network_flow_table
from ansible_collections.prodgate.deploy.plugins.filter.host_network_probes import host_network_probes

GROUPS = {"all": ["app1", "app2", "db1", "lb1"], "app_servers": ["app1", "app2"], "db_primary": ["db1"],
          "empty": []}
HOSTVARS = {
    "app1": {"host_network_identity": {"hostname": "app1", "fqdn": "app1.lab", "address": "10.0.0.11"},
             "__host_network_firewall_enforced": True},
    "app2": {"host_network_address": "10.0.0.12"},  # outside the play: from the inventory
    "db1": {"host_network_identity": {"hostname": "db1", "fqdn": "db1.lab", "address": "10.0.0.21"},
            "__host_network_firewall_enforced": "True"},
    "lb1": {"host_network_identity": {"hostname": "lb1", "fqdn": "lb1.lab", "address": "10.0.0.5"},
            "__host_network_firewall_enforced": False},
}


def test_flows_resolve_groups_hosts_addresses_and_any_into_one_row_per_destination():
    flows = [
        {"name": "app_to_db", "from": "app_servers", "to": "db_primary", "port": "5432"},
        {"name": "web", "from": "any", "to": ["app_servers", "app1"], "port": 8080},
        {"name": "monitoring", "from": ["192.168.9.0/24", "lb1", "empty", "nowhere", "fe80::1"], "to": "db1",
         "port": 9100, "proto": "udp"},
    ]
    rows = host_network_flow_table(flows, GROUPS, HOSTVARS)
    assert rows[0] == {"flow": "app_to_db", "destination": "db1", "port": 5432, "proto": "tcp",
                       "source_hosts": ["app1", "app2"], "sources": ["10.0.0.11", "10.0.0.12"], "any": False,
                       "cidrs": []}
    assert [(row["flow"], row["destination"]) for row in rows[1:3]] == [("web", "app1"), ("web", "app2")]
    assert rows[1]["any"] is True and rows[1]["sources"] == ["any"] and rows[1]["cidrs"] == []
    assert rows[3] == {"flow": "monitoring", "destination": "db1", "port": 9100, "proto": "udp",
                       "source_hosts": ["lb1"], "sources": ["10.0.0.5", "192.168.9.0/24", "fe80::1"], "any": False,
                       "cidrs": ["192.168.9.0/24", "fe80::1"]}
    assert len(rows) == 4


def test_a_flow_to_an_empty_or_unknown_group_has_no_row():
    assert host_network_flow_table([{"name": "x", "from": "any", "to": ["empty", "nowhere"], "port": 1}],
                                   GROUPS, HOSTVARS) == []


def _table():
    return host_network_flow_table([
        {"name": "app_to_db", "from": "app_servers", "to": "db_primary", "port": 5432},
        {"name": "admin", "from": "lb1", "to": "db1", "port": 5432},
        {"name": "metrics", "from": "10.9.0.0/16", "to": "db1", "port": 9100},
        {"name": "syslog", "from": "any", "to": "db1", "port": 514, "proto": "udp"},
        {"name": "web", "from": "lb1", "to": "app1", "port": 80},
    ], GROUPS, HOSTVARS)


def test_a_declared_source_must_reach_and_an_undeclared_one_is_dropped_where_the_firewall_is_enforced():
    probes = host_network_probes(_table(), "app1", ["app1", "db1", "lb1"], HOSTVARS)
    # 5432 declared for app1 (both flows named); 9100 is opened to a network only: not probed; udp never.
    assert probes == [{"destination": "db1", "address": "10.0.0.21", "port": 5432, "expect": "reach",
                       "flows": "app_to_db, admin"}]
    from_lb = host_network_probes(_table(), "lb1", ["app1", "db1", "lb1"], HOSTVARS)
    assert from_lb == [
        {"destination": "app1", "address": "10.0.0.11", "port": 80, "expect": "reach", "flows": "web"},
        {"destination": "db1", "address": "10.0.0.21", "port": 5432, "expect": "reach", "flows": "app_to_db, admin"}]
    from_db = host_network_probes(_table(), "db1", ["app1", "db1", "lb1"], HOSTVARS)
    assert from_db == [{"destination": "app1", "address": "10.0.0.11", "port": 80, "expect": "dropped", "flows": "web"}]


def test_an_unenforced_destination_is_not_probed_for_drops():
    hostvars = dict(HOSTVARS, app1=dict(HOSTVARS["app1"], __host_network_firewall_enforced="false"))
    assert host_network_probes(_table(), "db1", ["app1", "db1"], hostvars) == []


def test_a_destination_without_identity_stops_with_its_name():
    hostvars = dict(HOSTVARS, db1={"__host_network_firewall_enforced": True})
    with pytest.raises(ValueError, match="db1 has no published host_network_identity"):
        host_network_probes(_table(), "app1", ["app1", "db1"], hostvars)


def test_reach_passes_open_or_refused_and_dropped_passes_only_dropped():
    probed = [
        {"destination": "db1", "port": 5432, "flows": "app_to_db", "expect": "reach", "result": "open", "detail": ""},
        {"destination": "db1", "port": 5433, "flows": "x", "expect": "reach", "result": "refused", "detail": ""},
        {"destination": "db1", "port": 5434, "flows": "y", "expect": "reach", "result": "dropped", "detail": "timeout 2s"},
        {"destination": "app1", "port": 80, "flows": "web", "expect": "dropped", "result": "open", "detail": ""},
        {"destination": "app1", "port": 81, "flows": "web", "expect": "dropped", "result": "dropped", "detail": ""},
    ]
    assert flow_failures(probed, "lb1") == [
        "lb1 -> db1:5434 (y) expected reach, got dropped timeout 2s",
        "lb1 -> app1:80 (web) expected dropped, got open"]


def test_estate_lists_published_identities_and_inventory_hosts_with_an_address():
    hostvars = {
        "app1": HOSTVARS["app1"],
        "app2.corp.example": {"host_network_address": "10.0.0.12"},
        "db9": {"host_network_hostname": "db9", "host_network_address": "10.0.0.29"},
        "nowhere": {},
    }
    assert estate(list(hostvars), hostvars, "lab") == [
        {"hostname": "app1", "fqdn": "app1.lab", "address": "10.0.0.11"},
        {"hostname": "app2", "address": "10.0.0.12", "fqdn": "app2.lab"},
        {"hostname": "db9", "address": "10.0.0.29", "fqdn": "db9.lab"}]
    assert estate(["db9"], hostvars, "")[0]["fqdn"] == "db9"
