"""Host state after remediation (Art. 26): no compiler, no checkout, the application intact."""
import pytest


@pytest.mark.parametrize("package", ["gcc", "gcc-12", "libgcc-12-dev", "cpp-12", "binutils"])
def test_compiler_and_what_it_brought_are_gone(host, package):
    assert not host.package(package).is_installed


def test_no_compiler_command_left(host):
    for command in ("gcc", "cc", "x86_64-linux-gnu-gcc-12"):
        assert not host.exists(command), command


def test_checkout_removed_but_built_artifact_kept(host):
    assert not host.file("/opt/payments/.git").exists
    artifact = host.file("/opt/payments/bin/payments")
    assert artifact.is_file
    assert host.run("/opt/payments/bin/payments").stdout.strip() == "payments 1.0"


def test_host_still_healthy(host):
    assert host.package("python3").is_installed
    assert host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")
