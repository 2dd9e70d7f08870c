"""Drift between primary and standby (Art. 31): one finding per item that differs, with each host's value."""
from ansible_collections.prodgate.deploy.plugins.filter.postgresql_drift_findings import (
    findings, postgresql_drift_findings)

PRIMARY = {"packages": {"postgresql-15": "15.8-0+deb12u1"},
           "parameters": {"work_mem": "4096 kB", "TimeZone": "UTC", "DateStyle": "ISO, MDY", "max_connections": "100"},
           "hba": ["local all postgres peer", "host replication replicator 10.0.0.0/24 scram-sha-256"],
           "os": {"vm.swappiness": "1", "timezone": "Etc/UTC"}}


def _standby(**changes):
    state = {area: (dict(value) if isinstance(value, dict) else list(value)) for area, value in PRIMARY.items()}
    for area, value in changes.items():
        state[area] = value
    return state


ALL = {"packages": True, "parameters": True, "hba": True, "os": True}


def test_identical_hosts_have_no_findings():
    assert findings(ALL, {"db1": PRIMARY, "db2": _standby()}) == []


def test_each_differing_item_is_one_finding_with_every_hosts_value_in_case_insensitive_key_order():
    standby = _standby(parameters={"work_mem": "8192 kB", "TimeZone": "utc", "application_name": "x",
                                   "DateStyle": "ISO, MDY"},
                       os={"vm.swappiness": "1", "timezone": "Etc/UTC"})
    result = findings(ALL, {"db1": PRIMARY, "db2": standby})
    assert result == [
        {"area": "parameters", "item": "application_name", "values": {"db1": "(missing)", "db2": "x"}},
        {"area": "parameters", "item": "max_connections", "values": {"db1": "100", "db2": "(missing)"}},
        {"area": "parameters", "item": "TimeZone", "values": {"db1": "UTC", "db2": "utc"}},
        {"area": "parameters", "item": "work_mem", "values": {"db1": "4096 kB", "db2": "8192 kB"}},
    ]


def test_an_hba_rule_on_one_host_only_is_present_there_and_absent_on_the_other():
    standby = _standby(hba=["local all postgres peer", "host all all 0.0.0.0/0 trust\nhost all all ::/0 trust"])
    result = findings({"hba": True}, {"db1": PRIMARY, "db2": standby})
    assert result == [
        {"area": "hba", "item": "host replication replicator 10.0.0.0/24 scram-sha-256",
         "values": {"db1": "present", "db2": "absent"}},
        {"area": "hba", "item": "host all all 0.0.0.0/0 trust", "values": {"db1": "absent", "db2": "present"}},
        {"area": "hba", "item": "host all all ::/0 trust", "values": {"db1": "absent", "db2": "present"}},
    ]


def test_disabled_areas_are_not_compared_and_hosts_come_from_their_variables():
    standby = _standby(packages={"postgresql-15": "15.9-0+deb12u1"})
    hostvars = {"db1": {"postgresql_drift_state": PRIMARY}, "db2": {"postgresql_drift_state": standby}}
    assert findings({"packages": False, "parameters": True}, {"db1": PRIMARY, "db2": standby}) == []
    # the role's toggles arrive as `| bool` reads them: "false", "no", "0" are off
    assert postgresql_drift_findings({"packages": "no", "parameters": "true"}, ["db1", "db2"], hostvars) == []
    assert postgresql_drift_findings({"packages": True}, ["db2", "db1"], hostvars) == [
        {"area": "packages", "item": "postgresql-15", "values": {"db2": "15.9-0+deb12u1", "db1": "15.8-0+deb12u1"}}]
