"""Controller trust settings (controller.py): what the run cannot choose. The root-owned controller
file, the environment only in an AWX execution environment, refused run variables, the launcher
from the real uid or the AWX job, and the test clock per environment (issue 11, R1, R3, R7, R8)."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import launcher_identity, load_settings, real_user, refuse_run_overrides  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import TrustError  # noqa: E402


def env_for(path):
    return {"PRODGATE_CONTROLLER_CONFIG": str(path)}


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


@pytest.mark.parametrize("var", ["prodgate_policy", "prodgate_policy_root", "prodgate_ledger", "prodgate_register_db"])
def test_r1_r4_run_variables_cannot_choose_trust_settings(var):
    with pytest.raises(TrustError, match=rf"run variable {var} is not accepted: .* /etc/prodgate/controller.yml"):
        refuse_run_overrides({var: "/home/mallory/own.yml"})


def test_r1_environment_variables_do_not_override_a_controller_file(world, tmp_path):
    config = world.controller()
    with pytest.raises(TrustError, match="environment variable PRODGATE_POLICY_ROOT is set, but .*settings_from_environment is false"):
        load_settings(dict(env_for(config), PRODGATE_POLICY_ROOT=str(tmp_path / "own-root.yml")))


def test_controller_file_writable_by_others_is_refused(world):
    config = world.controller()
    os.chmod(config, 0o666)
    with pytest.raises(TrustError, match="writable by group or others"):
        load_settings(env_for(config))


def test_no_controller_settings_is_refused_with_the_fix(tmp_path):
    with pytest.raises(TrustError, match="no trust settings: .* does not exist.*docs/approvals.md"):
        load_settings(env_for(tmp_path / "absent.yml"))


def test_r3_no_bypass_switch_is_accepted():
    with pytest.raises(TrustError, match="run variable delivery_gates is not accepted: there is no switch"):
        refuse_run_overrides({"delivery_gates": False})


def test_r7_the_launcher_is_the_real_uid_not_user(world, monkeypatch):
    settings = load_settings(env_for(world.controller()))
    monkeypatch.setenv("USER", "ivan")
    monkeypatch.setenv("LOGNAME", "ivan")
    assert launcher_identity(settings, {}, environ={"USER": "ivan"}) == (real_user(), "uid")


def test_r7_awx_user_name_outside_awx_is_refused(world):
    settings = load_settings(env_for(world.controller()))
    with pytest.raises(TrustError, match="awx_user_name .* not accepted on this controller: it is not an AWX"):
        launcher_identity(settings, {"awx_user_name": "ivan"})


def test_awx_user_is_the_launcher_in_an_awx_execution_environment(world):
    config = world.controller(awx=True, settings_from_environment=True)
    settings = load_settings(dict(env_for(config), JOB_ID="42"))
    assert launcher_identity(settings, {"awx_user_name": "ivan", "awx_job_id": 42}, environ={"JOB_ID": "42"}) == ("ivan", "awx")
    with pytest.raises(TrustError, match="does not match the job environment's JOB_ID"):
        launcher_identity(settings, {"awx_user_name": "ivan", "awx_job_id": 41}, environ={"JOB_ID": "42"})


def test_r8_a_test_clock_is_per_environment_and_never_production(world):
    settings = load_settings(env_for(world.controller(test_clock_environments=["staging"])))
    assert settings.test_clock_allowed("staging") and not settings.test_clock_allowed("production")
    assert not settings.test_clock_allowed("staging", production=True) and not settings.test_clock_allowed("uat")
    with pytest.raises(TrustError, match="a test clock is never allowed in production"):
        load_settings(env_for(world.controller(test_clock_environments=["production"], name="c2.yml")))


def test_r1_an_environment_variable_cannot_add_a_setting_the_file_leaves_out(world, tmp_path):
    """A user-set PRODGATE_REGISTER_WITNESS would point the witness at a file the user controls."""
    config = world.controller()
    with pytest.raises(TrustError, match="environment variable PRODGATE_REGISTER_WITNESS is set"):
        load_settings(dict(env_for(config), PRODGATE_REGISTER_WITNESS=f"file:{tmp_path}/mine.log"))


def test_r1_a_launcher_cannot_name_the_trust_file(world, tmp_path):
    """Attack review: a non-root user pointed PRODGATE_CONTROLLER_CONFIG at a controller.yml of their own."""
    config = world.controller()
    os.chown(config, 65534, 65534)
    with pytest.raises(TrustError, match="owned by uid 65534, not by root"):
        load_settings(env_for(config))
    os.chown(config, 0, 0)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the launcher: an unprivileged user
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            load_settings(env_for(config))
            message = b"accepted"
        except TrustError as exc:
            message = str(exc).encode()
        os.write(write, message)
        os._exit(0)  # pylint: disable=protected-access
    os.close(write)
    os.waitpid(pid, 0)
    message = os.read(read, 4096).decode()
    assert "PRODGATE_CONTROLLER_CONFIG is honoured only when root runs the command" in message, message


def test_r7_an_awx_execution_environment_needs_the_job_environment(world):
    config = world.controller(awx=True, settings_from_environment=True)
    settings = load_settings(env_for(config))
    with pytest.raises(TrustError, match="no awx_user_name, awx_job_id and JOB_ID"):
        launcher_identity(settings, {"awx_user_name": "ivan", "awx_job_id": 42}, environ={})
