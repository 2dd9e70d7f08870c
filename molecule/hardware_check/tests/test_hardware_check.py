"""The hardware check is read-only and the mismatch run changed nothing (Art. 7)."""


def test_mismatch_run_changed_nothing(host):
    assert not host.file("/root/changed-after-hardware-check").exists


def test_host_is_what_the_class_expects(host):
    assert int(host.run("nproc").stdout) >= 1
    assert host.interface("eth0").exists
