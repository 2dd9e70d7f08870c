"""The OS baseline (Art. 6) as the host's users see it."""
import os

import pytest

KEY = open(os.path.join(os.path.dirname(__file__), "deploy_key.pub")).read().strip()


def as_deploy(host, command):
    return host.run("runuser -u deploy -- " + command)


def login_as_deploy(host, command):
    """A login session (PAM: pam_env reads /etc/environment, pam_limits the limits)."""
    return host.run("su - deploy -c %s", command)


def test_time_zone_and_locale(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Asia/Shanghai"
    assert host.run("date +%Z").stdout.strip() == "CST"
    assert "LANG=en_US.UTF-8" in host.file("/etc/default/locale").content_string
    assert "zh_CN.utf8" in host.run("locale -a").stdout


def test_chrony_runs_with_the_configured_server_only(host):
    chrony = host.service("chrony")
    assert chrony.is_running and chrony.is_enabled
    sources = host.run("chronyc -N sources")
    assert sources.rc == 0, sources.stderr
    assert "127.0.0.1" in sources.stdout
    conf = host.file("/etc/chrony/chrony.conf").content_string
    assert "server 127.0.0.1 iburst" in conf
    assert "pool " not in conf  # the distribution's internet pool is gone
    # container: chrony measures and never sets the clock (-x)
    assert "-x" in host.run("ps -o args= -C chronyd").stdout


def test_operator_can_sudo_the_allowed_command(host):
    result = as_deploy(host, "sudo -n /usr/bin/systemctl --no-pager status chrony.service")
    assert result.rc == 0, result.stderr


@pytest.mark.parametrize("command", [
    "/usr/bin/id",
    "/bin/bash -c true",
    "/usr/bin/systemctl restart chrony.service",
    "/usr/bin/systemctl status chrony.service",  # with a pager: a shell escape, so not allowed
    "/usr/bin/cat /etc/shadow",
])
def test_operator_cannot_sudo_anything_else(host, command):
    result = as_deploy(host, "sudo -n " + command)
    assert result.rc != 0
    assert "password is required" in result.stderr or "not allowed" in result.stderr


def test_operator_account_and_key(host):
    deploy = host.user("deploy")
    assert "deploy" in deploy.groups
    keys = host.file("/home/deploy/.ssh/authorized_keys")
    assert keys.user == "deploy" and keys.mode == 0o600
    assert keys.content_string.strip() == KEY
    assert host.run("passwd -S deploy").stdout.split()[1] == "L"  # no password: keys only


def test_environment_for_applications(host):
    env = host.file("/etc/prodgate/env/payments.env")
    assert env.mode == 0o640 and env.group == "deploy"
    assert 'PAYMENTS_DB_HOST="db1.lab.prodgate.internal"' in env.content_string
    login_env = login_as_deploy(host, "echo $PRODGATE_ENVIRONMENT")
    assert login_env.stdout.strip() == "molecule"


def test_parameters_written(host):
    sysctl = host.file("/etc/sysctl.d/60-prodgate.conf").content_string
    assert "net.core.somaxconn = 1024" in sysctl and "vm.swappiness = 10" in sysctl
    limits = login_as_deploy(host, "ulimit -n")
    assert limits.stdout.strip() == "512"


def test_banner_and_journal(host):
    assert "Authorised access only" in host.file("/etc/issue.net").content_string
    shown = host.run("systemd-analyze cat-config systemd/journald.conf").stdout
    assert "SystemMaxUse=512M" in shown
    assert host.package("logrotate").is_installed
