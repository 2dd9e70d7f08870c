"""The set-up installs every Debian package the project uses at run time, on a new Debian 12 (issue 15).

A newcomer's `make demo` failed at its first step with "netavark: No such file or directory": the
set-up did not install iptables, and the machines where CI had run green had it from earlier work.
Here the set-up's real package step (scripts/setup.sh --system-only: the Debian packages of
scripts/host-packages.txt and the podman settings) runs on the bare Debian minbase the lab image is
built from (localhost/prodgate-minbase:12, made by scripts/build-image.sh), in a privileged container.
Then every command the list names must be there, and podman must do inside it what the lab does on
the controller: run a container on a network of its own (what failed without iptables).
Downloaded .debs and package lists are kept in ~/.cache/prodgate/minbase-apt between runs.
"""
import subprocess
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
LIST = ROOT / "scripts" / "host-packages.txt"
MINBASE = "localhost/prodgate-minbase:12"
CACHE = Path.home() / ".cache" / "prodgate" / "minbase-apt"


def _host_packages():
    """(package, [command or absolute path, ...]) for each line of the list."""
    entries = []
    for line in LIST.read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            entries.append((words[0], words[1:]))
    return entries


def _podman(*args, timeout=120):
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module", name="machine")
def fixture_machine():
    """A new Debian 12 system after the set-up's package step; yields exec(cmd) -> CompletedProcess."""
    if _podman("image", "exists", MINBASE).returncode != 0:
        pytest.fail(f"image {MINBASE} is missing: scripts/build-image.sh builds it with the lab image "
                    "(make setup; scripts/build-image.sh --force if the lab image is already current)")
    (CACHE / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (CACHE / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    name = f"prodgate-setup-test-{uuid.uuid4().hex[:8]}"
    started = _podman("run", "-d", "--rm", "--privileged", "--name", name, "--hostname", "newcomer",
                      "-v", f"{ROOT}:/src:ro", "-v", f"{CACHE / 'archives'}:/var/cache/apt/archives",
                      "-v", f"{CACHE / 'lists'}:/var/lib/apt/lists", MINBASE, "sleep", "1800")
    assert started.returncode == 0, started.stderr

    def run(cmd, timeout=120):
        return _podman("exec", name, "bash", "-c", cmd, timeout=timeout)

    try:
        # dpkg without fsync: a throwaway system, and most of this test's time is unpacking
        run("echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/prodgate-test-unsafe-io")
        setup = run("/src/scripts/setup.sh --system-only", timeout=1200)
        if setup.returncode != 0:
            pytest.fail(f"scripts/setup.sh --system-only failed on a new Debian 12 (exit {setup.returncode}):\n"
                        f"{(setup.stdout + setup.stderr)[-3000:]}")
        yield {"run": run, "setup": setup}
    finally:
        _podman("rm", "-f", "-t", "0", name)


def test_each_package_of_the_list_names_what_the_project_uses_from_it():
    entries = _host_packages()
    packages = [package for package, dummy in entries]
    assert len(packages) == len(set(packages)), f"a package is listed twice in {LIST}"
    unchecked = [package for package, commands in entries if not commands]
    assert not unchecked, f"{LIST}: name the command or file the project uses from {unchecked}"


def test_setup_installs_the_list_on_a_new_system(machine):
    setup = machine["setup"]
    assert "setup: installing Debian packages:" in setup.stdout, setup.stdout
    status = machine["run"]("dpkg-query -W -f='${Package} ${Status}\\n' " + " ".join(p for p, dummy in _host_packages()))
    not_installed = [line for line in status.stdout.splitlines() if not line.endswith("install ok installed")]
    assert status.returncode == 0 and not not_installed, status.stdout + status.stderr


def test_every_command_the_project_calls_is_found(machine):
    missing = []
    for package, commands in _host_packages():
        for command in commands:
            probe = f"test -e {command}" if command.startswith("/") else f"command -v {command}"
            if machine["run"](probe).returncode != 0:
                missing.append(f"{command} ({package})")
    assert not missing, f"not found after the set-up's package step: {', '.join(missing)}"


def test_podman_runs_a_container_on_its_own_network(machine):
    # What the lab does first (playbooks/lab.yml): a network, then a container on it. Without iptables
    # netavark fails here with "netavark: No such file or directory (os error 2)". Nested in this test's
    # container: vfs storage, a cgroup namespace of its own, and a root of three files (a shell and libc).
    tiny = ("r=/srv/tiny; mkdir -p $r/bin $r/lib/x86_64-linux-gnu $r/lib64 $r/etc $r/proc $r/sys $r/dev $r/tmp && "
            "cp /usr/bin/dash $r/bin/sh && cp /lib/x86_64-linux-gnu/libc.so.6 $r/lib/x86_64-linux-gnu/ && "
            "cp /lib64/ld-linux-x86-64.so.2 $r/lib64/")
    podman = "podman --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"
    proc = machine["run"](f"{tiny} && {podman} network create --subnet 10.89.250.0/24 newcomer-net >/dev/null && "
                          f"{podman} run --rm --network newcomer-net --cgroupns private --rootfs /srv/tiny "
                          "/bin/sh -c 'test -e /sys/class/net/eth0 && echo network-up'", timeout=300)
    assert proc.returncode == 0 and "network-up" in proc.stdout, \
        f"podman could not run a container on a network:\n{proc.stdout}{proc.stderr}"


def test_a_second_run_is_quiet(machine):
    again = machine["run"]("/src/scripts/setup.sh --system-only", timeout=300)
    assert again.returncode == 0 and again.stdout + again.stderr == "", again.stdout + again.stderr
