"""Storage (Art. 6): every declared property of a mount that the host does not have is named as drift."""
import json

from ansible_collections.prodgate.deploy.plugins.filter.storage_report import report

GIB = 1024 ** 3


def _findmnt(target, fstype="ext4", options="rw,nosuid,nodev,relatime", size=10 * GIB, avail=4 * GIB):
    fs = {"target": target, "source": "/dev/vdb1", "fstype": fstype, "options": options, "size": size, "avail": avail}
    return {"rc": 0, "stdout": json.dumps({"filesystems": [fs]})}


def _stat(owner="root", group="root", mode="0755"):
    return {"stat": {"exists": True, "pw_name": owner, "gr_name": group, "mode": mode}}


def test_a_mount_as_declared_has_no_drift_and_reports_sizes_in_mib():
    declared = [{"path": "/data", "fstype": "ext4", "opts": ["defaults", "nosuid", "nodev", "x-systemd.automount=1"],
                 "owner": "root", "mode": "0755", "min_size_mb": 10240, "min_free_mb": 4096, "min_free_pct": 40}]
    assert report(declared, [_findmnt("/data")], [_stat()], ["defaults"]) == [
        {"path": "/data", "managed": True, "fstype": "ext4", "options": "rw,nosuid,nodev,relatime",
         "size_mb": 10240, "free_mb": 4096, "drift": []}]


def test_every_difference_is_named():
    declared = [{"path": "/data", "fstype": "xfs", "opts": ["noexec", "bind"], "owner": "postgres", "group": "postgres",
                 "mode": "0700", "min_size_mb": 20000, "min_free_mb": 5000, "min_free_pct": 50, "manage": False}]
    (entry,) = report(declared, [_findmnt("/data", size="10737418240", avail=str(4 * GIB))], [_stat()])
    assert entry["managed"] is False
    assert entry["drift"] == [
        "fstype ext4, declared xfs", "option noexec missing (live: rw,nosuid,nodev,relatime)",
        "size 10240 MiB < 20000 MiB", "free 4096 MiB < 5000 MiB", "free 40% < 50%",
        "owner root, declared postgres", "group root, declared postgres", "mode 0755, declared 0700"]


def test_a_mount_point_with_nothing_mounted_is_not_mounted_and_a_missing_one_has_no_owner_drift():
    declared = [{"path": "/a", "owner": "app"}, {"path": "/b", "owner": "app", "fstype": "none"}]
    live = [{"rc": 1, "stdout": ""}, {"rc": 0, "stdout": ""}]
    stats = [{"stat": {"exists": False}}, _stat(owner="app")]
    result = report(declared, live, stats)
    assert [entry["drift"] for entry in result] == [["not mounted"], ["not mounted"]]
    assert result[0] == {"path": "/a", "managed": True, "fstype": "", "options": "", "size_mb": 0, "free_mb": 0,
                         "drift": ["not mounted"]}


def test_an_empty_filesystem_size_gives_zero_percent_free():
    (entry,) = report([{"path": "/z", "min_free_pct": 1}], [_findmnt("/z", size=0, avail=0)], [_stat()])
    assert entry["drift"] == ["free 0% < 1%"]
