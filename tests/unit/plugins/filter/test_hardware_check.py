"""Hardware check (Art. 7): a host against its class, the checklist, and the table of every host."""
from ansible_collections.prodgate.deploy.plugins.filter.hardware_check_compare import (
    checklist, compare, hardware_check_compare, to_int)
from ansible_collections.prodgate.deploy.plugins.filter.hardware_check_table import hardware_check_table, table

DATABASE = {
    "cpu_count_min": 16, "cpu_mhz_min": 2400, "cpu_model_pattern": "Xeon|EPYC", "memory_mb_min": 131072,
    "disk_count_min": 2, "disk_size_gb_min": 900, "nic_count_min": 4, "nic_driver_pattern": "ixgbe|i40e",
    "hba_count_min": 2, "product_pattern": "PowerEdge|ProLiant",
}
BIG = {
    "class": "database", "cpu_count": 32, "cpu_mhz": 2600, "cpu_model": "Intel(R) Xeon(R) Gold 6338",
    "memory_mb": 262144, "disks": [{"name": "sda", "size_gb": 960, "model": ""}, {"name": "sdb", "size_gb": 960, "model": ""}],
    "nics": ["eno1", "eno2", "ens1f0", "ens1f1"], "nic_drivers": ["i40e", "i40e", "ixgbe", "ixgbe"],
    "hba_count": 2, "product": "Dell Inc. PowerEdge R750",
}


def _by_check(rows):
    return {row["check"]: row for row in rows}


def test_a_host_that_meets_every_key_of_its_class_passes_every_row():
    rows = compare(BIG, {"database": DATABASE})
    assert [row["check"] for row in rows] == [
        "CPU count", "CPU MHz", "CPU model", "memory MiB", "internal disks", "NICs", "NIC drivers",
        "FC HBA ports", "system model"]
    assert all(row["ok"] for row in rows)
    by = _by_check(rows)
    assert by["internal disks"]["expected"] == ">= 2 x >= 900 GB"
    assert by["internal disks"]["actual"] == "sda 960 GB, sdb 960 GB"
    assert by["NICs"]["actual"] == "4 (eno1, eno2, ens1f0, ens1f1)"
    assert by["CPU count"] == {"check": "CPU count", "expected": ">= 16", "actual": "32", "ok": True}


def test_each_shortfall_is_its_own_failed_row_with_expected_and_actual():
    small = dict(BIG, cpu_count=8, cpu_mhz="2100.5", memory_mb=4096, hba_count=0, product="QEMU Standard PC ",
                 disks=[{"name": "vda", "size_gb": 20, "model": ""}], nic_drivers=["virtio_net"], cpu_model="AMD Ryzen")
    by = _by_check(compare(small, {"database": DATABASE}))
    failed = sorted(name for name, row in by.items() if not row["ok"])
    assert failed == sorted(["CPU count", "CPU MHz", "CPU model", "memory MiB", "internal disks", "NIC drivers",
                             "FC HBA ports", "system model"])
    assert by["CPU MHz"]["actual"] == "2100.5"
    assert by["system model"]["actual"] == "QEMU Standard PC"
    assert by["NICs"]["ok"]


def test_only_declared_keys_are_checked_and_disk_defaults_apply():
    rows = compare(dict(BIG, disks=[]), {"database": {"disk_size_gb_min": 1}})
    assert rows == [{"check": "internal disks", "expected": ">= 1 x >= 1 GB", "actual": "none", "ok": False}]


def test_no_nic_driver_is_not_all_drivers_matching():
    rows = compare(dict(BIG, nic_drivers=[]), {"database": {"nic_driver_pattern": "."}})
    assert rows == [{"check": "NIC drivers", "expected": "all ~ .", "actual": "none", "ok": False}]


def test_a_host_without_class_fails_when_a_class_is_required_and_is_not_applicable_otherwise():
    for name in ("", "unknown"):
        rows = compare(dict(BIG, **{"class": name}), {"database": DATABASE}, require_class=True)
        assert rows == [{"check": "host class", "expected": "a class in hardware_check_classes",
                         "actual": name or "none", "ok": False}]
        assert checklist(rows, True)[0]["status"] == "failed"
        lenient = compare(dict(BIG, **{"class": name}), {"database": DATABASE}, require_class=False)
        assert lenient[0]["ok"] is True
        assert checklist(lenient, False)[0]["status"] == "checked"
    assert checklist([{"check": "host class", "expected": "x", "actual": "y", "ok": False}], False)[0]["status"] == \
        "not_applicable"


def test_checklist_entries_name_the_article_and_say_expected_and_actual():
    result = hardware_check_compare(dict(BIG, cpu_count=8), {"database": {"cpu_count_min": 16}})
    assert result["checklist"] == [{"id": "a7_hardware", "check": "CPU count", "status": "failed",
                                    "detail": "expected >= 16, actual 8"}]


def test_to_int_reads_like_jinja():
    assert (to_int("2400.7"), to_int(" 12 "), to_int(None), to_int("x"), to_int(3.9)) == (2400, 12, 0, 0, 3)


def test_table_aligns_every_host_and_lists_each_mismatch():
    rows_ok = [{"check": "CPU count", "expected": ">= 1", "actual": "2", "ok": True}]
    rows_bad = [{"check": "memory MiB", "expected": ">= 4194304", "actual": "2048", "ok": False},
                {"check": "NICs", "expected": ">= 1", "actual": "x" * 60, "ok": True}]
    result = table([{"host": "app1", "class": "application", "rows": rows_ok},
                    {"host": "database-host-1", "class": None, "rows": rows_bad},
                    {"host": "never-compared", "class": "application", "rows": None}])
    lines = result["lines"]
    assert lines[0].split() == ["host", "class", "check", "expected", "actual", "result"]
    assert lines[1].startswith("app1" + " " * 13 + "application  CPU count")
    assert lines[1].endswith(" ok")
    assert lines[2].split()[:2] == ["database-host-1", "-"]
    assert lines[2].endswith("MISMATCH")
    assert "x" * 37 + "..." in lines[3] and "x" * 38 not in lines[3]
    assert len(lines) == 4
    near = table([{"host": "h", "class": "c", "rows": [{"check": "x", "expected": "y", "actual": "z" * 45, "ok": True}]}])
    assert "z" * 45 in near["lines"][1]  # Jinja's truncate leeway: up to 5 over the width is kept whole
    assert result["mismatches"] == ["database-host-1 memory MiB: expected >= 4194304, actual 2048"]


def test_table_reads_the_hosts_variables():
    hostvars = {"a": {"hardware_check_actual": {"class": "app"},
                      "hardware_check_rows": [{"check": "NICs", "expected": ">= 9", "actual": "1 (eth0)", "ok": False}]},
                "b": {}}
    result = hardware_check_table(hostvars, ["a", "b"])
    assert result["mismatches"] == ["a NICs: expected >= 9, actual 1 (eth0)"]
    assert len(result["lines"]) == 2


def test_internal_disks_are_the_named_devices_of_at_least_one_gb_sorted_by_name():
    from ansible_collections.prodgate.deploy.plugins.filter.hardware_check_disks import disks
    devices = {
        "sdb": {"sectors": "1875385008", "sectorsize": 512, "model": "PERC H730"},
        "sda": {"sectors": 1875385008, "sectorsize": "512", "model": None},
        "nvme0n1": {"sectors": "244190646", "sectorsize": "4096"},
        "loop0": {"sectors": "209715200", "sectorsize": 512},
        "dm-0": {"sectors": "209715200", "sectorsize": 512},
        "sr0": {"sectors": "2097151", "sectorsize": 512},
        "vdz": {"sectors": "976562", "sectorsize": 512},  # 0.49 GB rounds to 0: not a disk
    }
    assert disks(devices, "^(loop|ram|zram|dm-|md|sr|fd|nbd|rbd)") == [
        {"name": "nvme0n1", "size_gb": 1000, "model": ""},
        {"name": "sda", "size_gb": 960, "model": ""},
        {"name": "sdb", "size_gb": 960, "model": "PERC H730"},
    ]
