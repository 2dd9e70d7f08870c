"""End state of the data tier after the side effects (switch-over, switch-back, failover, rejoin).

The original standby is the primary now, the original primary was fenced and rebuilt as its
standby; applications point at the promoted host; the backup plan produced a verified backup
and a drill record with matching content.
"""
import json

import pytest
import testinfra

PRIMARY = testinfra.get_host("podman://prodgate-mol-db-primary")  # original primary, rebuilt as standby
STANDBY = testinfra.get_host("podman://prodgate-mol-db-standby")  # original standby, promoted
BACKUP = testinfra.get_host("podman://prodgate-mol-db-backup")    # backup host, also the application host
DATABASE_HOSTS = pytest.mark.parametrize("host", [PRIMARY, STANDBY], ids=["original-primary", "original-standby"])


def _sql(host, query):
    result = host.run("sudo -u postgres psql -d appdb -XAtc %s", query)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("host,expected", [(STANDBY, ("f", "")), (PRIMARY, ("t", "streaming"))],
                         ids=["promoted-standby-is-primary", "old-primary-streams-from-it"])
def test_roles_swapped_after_failover_and_rejoin(host, expected):
    in_recovery, receiver = _sql(
        host, "SELECT pg_is_in_recovery(), coalesce((SELECT status FROM pg_stat_wal_receiver), '')"
    ).split("|")
    assert (in_recovery, receiver) == expected


@DATABASE_HOSTS
def test_every_marker_row_is_on_both_database_hosts(host):
    markers = _sql(host, "SELECT string_agg(name, ',' ORDER BY name) FROM public.markers")
    assert markers == "after-failover,after-switchback,after-switchover,before-switchover"
    assert _sql(host, "SELECT count(*) FROM public.accounts") == "100"


def test_old_primary_is_no_longer_fenced_and_starts_at_boot():
    host = PRIMARY
    assert not host.file("/var/lib/postgresql/PRODGATE_FENCED").exists
    assert host.service("postgresql@15-main").is_enabled


def test_applications_point_at_the_promoted_host():
    host = BACKUP
    env = host.file("/etc/prodgate/database.env").content_string.splitlines()
    assert "PGHOST=10.89.178.22" in env
    assert "PRODGATE_DB_PRIMARY=prodgate-mol-db-standby" in env


def test_backup_verified_and_drill_matched():
    host = BACKUP
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
