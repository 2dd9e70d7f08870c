"""Fixtures for the change register: a real throwaway PostgreSQL server, SQLite paths, playbook runs.

PostgreSQL: an initdb'd cluster under a temp dir on a loopback port, run as the `postgres` user
when the tests run as root, so the tests never depend on (or disturb) the machine's own cluster.
Missing server binaries are a failure, not a skip: scripts/setup.sh installs Debian's postgresql.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.join(REPO, ".venv", "bin")


def _pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        which = shutil.which("initdb")
        found = [which] if which else []
    if not found:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: the register's PostgreSQL tests need a real "
                    "server; run scripts/setup.sh (it installs Debian's postgresql) or apt-get install postgresql")
    return os.path.dirname(found[-1])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd, owner):
    if os.geteuid() == 0:
        return ["runuser", "-u", owner, "--"] + cmd
    return cmd


@pytest.fixture(scope="session")
def pg_server():
    """URL of a fresh PostgreSQL server (superuser `postgres`, trust auth, 127.0.0.1 only)."""
    bindir = _pg_bindir()
    owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(owner)
        except KeyError:
            pytest.fail("user 'postgres' does not exist: install Debian's postgresql package (scripts/setup.sh)")
    base = tempfile.mkdtemp(prefix="prodgate-pg-")
    data, sock, log = os.path.join(base, "data"), os.path.join(base, "sock"), os.path.join(base, "server.log")
    os.makedirs(sock)
    if os.geteuid() == 0:
        shutil.chown(base, owner)
        shutil.chown(sock, owner)
    port = _free_port()
    init = subprocess.run(_as_pg_user([os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                                       "-E", "UTF8", "--no-sync"], owner), capture_output=True, text=True, check=False)
    if init.returncode != 0:
        pytest.fail(f"initdb of the test PostgreSQL cluster failed: {init.stderr}")
    start = subprocess.run(_as_pg_user([os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log, "-w", "-t", "60", "-o",
                                        f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c max_connections=200",
                                        "start"], owner), capture_output=True, text=True, check=False)
    if start.returncode != 0:
        logtext = open(log, encoding="utf-8", errors="replace").read() if os.path.exists(log) else ""
        pytest.fail(f"the test PostgreSQL server did not start: {start.stderr}\n{logtext}")
    try:
        yield {"url": f"postgresql://postgres@127.0.0.1:{port}/postgres", "port": port, "data": data,
               "bindir": bindir, "owner": owner, "log": log}
    finally:
        subprocess.run(_as_pg_user([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"], owner),
                       capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server):
    """A new, empty database on the test server for one test."""
    import psycopg  # pylint: disable=import-outside-toplevel
    name = "reg_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server["url"], autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_server["url"].rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def register_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "register.db")
    return request.getfixturevalue("pg_url")


def _world_module():
    """tests/approval_world.py, loaded by path (tests/integration has a lab world of the same name)."""
    import importlib.util  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    name = "prodgate_tests_approval_world"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tests", "approval_world.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _controller(base, awx=False, name="controller.yml"):
    """A controller.yml for the register tests: the register settings come from the environment below
    (settings_from_environment, as in an AWX execution environment), and a signed policy, pinned to its
    governance root, names `staging` as a non-production environment (issue 11)."""
    os.makedirs(base, exist_ok=True)
    world = _world_module().World(os.path.join(str(base), "policy-world"))
    path = os.path.join(str(base), name)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"policy": world.policy_path, "policy_root": world.write_root(), "settings_from_environment": True,
                        "awx": awx}, handle)
    return path


def _reg_env(base):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("PRODGATE_REGISTER_", "ANSIBLE_")) or k in ("JOB_ID", "AWX_HOST"):
            env.pop(k)
    env.update({
        "PATH": BIN + os.pathsep + env.get("PATH", ""),
        "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
        "ANSIBLE_CALLBACKS_ENABLED": "prodgate.deploy.change_register",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(base / "ansible-tmp"),
        "PRODGATE_REGISTER_DB": str(base / "register.db"),
        "PRODGATE_REGISTER_SIGNING_KEY": str(base / "keys" / "signing.key"),
        "PRODGATE_REGISTER_ANCHOR": str(base / "anchor-{register_id}.json"),
        "PRODGATE_REGISTER_JOURNAL_DIR": str(base / "journal"),
        "PRODGATE_CONTROLLER_CONFIG": _controller(base),
    })
    return env


@pytest.fixture(scope="session")
def controller_factory():
    """controller.yml files: ``controller_factory(folder, awx=True)`` for an AWX execution environment."""
    return _controller


@pytest.fixture(scope="session")
def reg_env_factory():
    """Environment for playbook runs with the callback on a SQLite register under a given folder."""
    return _reg_env


@pytest.fixture
def reg_env(tmp_path):
    return _reg_env(tmp_path)
