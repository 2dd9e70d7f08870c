"""Declared storage (Art. 6) as the host sees it: mounted, with its options, owner and mode."""


def test_tmpfs_mounted_with_its_options(host):
    data = host.mount_point("/srv/app-data")
    assert data.exists
    assert data.filesystem == "tmpfs"
    for option in ("nosuid", "nodev", "noexec"):
        assert option in data.options
    size = host.run("findmnt --bytes --noheadings --output SIZE /srv/app-data").stdout.strip()
    assert int(size) == 64 * 1024 * 1024


def test_mounted_directory_owner_and_mode(host):
    directory = host.file("/srv/app-data")
    assert directory.user == "nobody" and directory.group == "nogroup"
    assert directory.mode == 0o750


def test_noexec_is_real(host):
    host.run("install -m 0755 /bin/true /srv/app-data/probe")
    assert host.run("/srv/app-data/probe").rc != 0


def test_bind_mount_shows_the_source(host):
    host.run("echo written-through-bind > /srv/app-logs/marker")
    assert host.file("/var/lib/app-logs/marker").content_string.strip() == "written-through-bind"
    assert host.mount_point("/srv/app-logs").exists


def test_mounts_survive_reboot_via_fstab(host):
    fstab = host.file("/etc/fstab").content_string
    assert "/srv/app-data" in fstab and "nosuid,nodev,noexec,size=64m" in fstab
    assert "/var/lib/app-logs /srv/app-logs none bind" in fstab
