"""End state of the data tier after the side effects (switch-over, switch-back, failover, rejoin).

The original standby is the primary now, the original primary was fenced and rebuilt as its
standby; applications point at the promoted host; the backup plan produced a verified backup
and a drill record with matching content.
"""
import json

import pytest

testinfra_hosts = ["db_primary", "db_standby", "backup_servers"]


def _name(host):
    return host.backend.get_hostname()


def _sql(host, query):
    result = host.run("sudo -u postgres psql -d appdb -XAtc %s", query)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture()
def role(host):
    name = _name(host)
    if "primary" in name:
        return "original_primary"
    if "standby" in name:
        return "original_standby"
    return "backup"


def test_roles_swapped_after_failover_and_rejoin(host, role):
    if role == "backup":
        pytest.skip("not a database host")
    in_recovery, receiver = _sql(
        host, "SELECT pg_is_in_recovery(), coalesce((SELECT status FROM pg_stat_wal_receiver), '')"
    ).split("|")
    if role == "original_standby":
        assert (in_recovery, receiver) == ("f", "")
    else:
        assert (in_recovery, receiver) == ("t", "streaming")


def test_every_marker_row_is_on_both_database_hosts(host, role):
    if role == "backup":
        pytest.skip("not a database host")
    markers = _sql(host, "SELECT string_agg(name, ',' ORDER BY name) FROM public.markers")
    assert markers == "after-failover,after-switchback,after-switchover,before-switchover"
    assert _sql(host, "SELECT count(*) FROM public.accounts") == "100"


def test_old_primary_is_no_longer_fenced_and_starts_at_boot(host, role):
    if role != "original_primary":
        pytest.skip("only the rebuilt old primary")
    assert not host.file("/var/lib/postgresql/PRODGATE_FENCED").exists
    assert host.service("postgresql@15-main").is_enabled


def test_applications_point_at_the_promoted_host(host, role):
    if role != "backup":
        pytest.skip("the backup host is also the application host")
    env = host.file("/etc/prodgate/database.env").content_string.splitlines()
    assert "PGHOST=10.89.178.22" in env
    assert "PRODGATE_DB_PRIMARY=prodgate-mol-db-standby" in env


def test_backup_verified_and_drill_matched(host, role):
    if role != "backup":
        pytest.skip("backups live on the backup host")
    store = "/var/backups/prodgate/appdb"
    check = host.run("cd %s/latest && sudo -u postgres sha256sum --quiet -c SHA256SUMS", store)
    assert check.rc == 0, check.stdout + check.stderr
    assert host.service("prodgate-backup-appdb.timer").is_enabled
    drills = host.run("sudo -u postgres sh -c 'cat %s/drills/*.json'", store)
    drill = json.loads(drills.stdout)
    assert drill["match"] is True
    assert drill["restored"]["counts"]["public.accounts"] == 100
    plan = json.loads(host.file(store + "/PLAN.json").content_string)
    assert plan["people"]["responsible"] == "it_ops" and plan["retention_days"] == 14
