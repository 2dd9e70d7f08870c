"""prodgate.deploy.change_window as an ansible-core action plugin, run in-process: it refuses what a
run must not choose, and the window's decision (allowed, message, the window that decided) reaches
the task result; a refusal fails the task with the decision attached."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from action_harness import refusal, run_plugin  # noqa: E402  pylint: disable=wrong-import-position
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.action.change_window import ActionModule  # noqa: E402

FREEZE = {"name": "march-release-freeze", "kind": "deny", "start": "2026-03-02T00:00", "end": "2026-03-06T00:00",
          "reason": "quarter-end reporting"}
BREAK_GLASS = {"roles_retrospective": ["it_head", "coo"], "deadline_working_days": 2}


def run_action(args=None, task_vars=None):
    return run_plugin(ActionModule, "prodgate.deploy.change_window", args, task_vars)


def failure(**kwargs):
    return refusal(run_action, **kwargs)


def change_vars(environment="staging", **over):
    variables = {"prodgate_change_id": "CHG-2001", "prodgate_change_type": "routine", "prodgate_system": "ta-core",
                 "prodgate_environment": environment}
    variables.update(over)
    return variables


@pytest.fixture(name="world")
def fixture_world(tmp_path, monkeypatch):
    world = World(tmp_path, overrides={"freeze_windows": [dict(FREEZE)], "break_glass": dict(BREAK_GLASS), "version": 3})
    monkeypatch.setenv("PRODGATE_CONTROLLER_CONFIG", str(world.controller(test_clock_environments=["staging"])))
    return world


# ---- what a run may not choose ------------------------------------------------------------------

def test_option_policy_is_refused_naming_where_it_belongs(world):
    exc = failure(args={"policy": "/home/mallory/policy.yml", "now": "2026-03-07T10:00"}, task_vars=change_vars())
    assert exc.message == ("change_window refused: task option policy is not accepted: it is a trust setting of the "
                           "controller; set `policy` in /etc/prodgate/controller.yml (the controller's administrator sets "
                           "it), or the AWX credential 'prodgate governance' that injects PRODGATE_POLICY")


@pytest.mark.parametrize("variable, where", [
    ("prodgate_policy", "it would choose a trust setting of the controller; set `policy` in /etc/prodgate/controller.yml"),
    ("prodgate_policy_root", "set `policy_root` in /etc/prodgate/controller.yml"),
    ("prodgate_test_clock_environments", "set `test_clock_environments` in /etc/prodgate/controller.yml"),
    ("delivery_gates", "there is no switch that turns the change controls off; remove it"),
])
def test_run_variables_that_choose_trust_settings_are_refused(world, variable, where):
    exc = failure(args={"now": "2026-03-07T10:00"}, task_vars=change_vars(**{variable: "x"}))
    assert exc.message.startswith(f"change_window refused: run variable {variable} is not accepted: ")
    assert where in exc.message


def test_a_missing_change_field_names_its_run_variable(world):
    variables = change_vars()
    del variables["prodgate_system"]
    exc = failure(task_vars=variables)
    assert exc.message == ("change_window refused: change_window needs system: set the option(s) or the run variable(s) "
                           "prodgate_system")


def test_a_test_clock_in_production_is_refused(world):
    exc = failure(args={"now": "2026-03-07T10:00"}, task_vars=change_vars("production"))
    assert exc.message.startswith("change_window refused: option `now` sets a test clock, which environment production "
                                  "does not allow")
    assert "test_clock_environments" in exc.message


# ---- the decision reaches the result --------------------------------------------------------------

def test_an_open_slot_is_allowed_and_says_so(world):
    result = run_action(args={"now": "2026-03-07T10:00"}, task_vars=change_vars())
    assert result["allowed"] is True and result["changed"] is False
    assert result["msg"] == result["message"]
    assert result["message"].startswith("ta-core: open (no window applies)")
    assert result["clock"] == "test" and result["policy_version"] == 3 and result["targets"] == ["app1", "app2"]
    assert result["evaluated_at"] == "2026-03-07T10:00:00+08:00"


def test_a_frozen_change_fails_the_task_with_the_decision(world):
    exc = failure(args={"now": "2026-03-04T10:00"}, task_vars=change_vars())
    assert exc.message.startswith("change_window refused: ta-core: frozen by deny window 'march-release-freeze' until "
                                  "2026-03-06 00:00 Asia/Shanghai")
    assert exc.result["allowed"] is False and exc.result["frozen"] is True
    assert exc.result["window"]["decided_by"] == ["march-release-freeze"]
    assert exc.result["failed"] is True


def test_options_win_over_run_variables(world):
    """A window that freezes only crm: the task option system=crm is what is decided, not prodgate_system."""
    windows = [dict(FREEZE, systems=["crm"])]
    world.doc["freeze_windows"] = windows
    world.sign_policy()
    assert run_action(args={"now": "2026-03-04T10:00"}, task_vars=change_vars())["allowed"] is True
    exc = failure(args={"now": "2026-03-04T10:00", "system": "crm"}, task_vars=change_vars())
    assert exc.message.startswith("change_window refused: crm: frozen by deny window 'march-release-freeze'")


def test_break_glass_passes_a_frozen_change_and_keeps_what_it_overrode(world):
    result = run_action(args={"now": "2026-03-04T10:00", "break_glass": True}, task_vars=change_vars())
    assert result["allowed"] is True and result["break_glass"] is True and result["overridden_by"] == "break_glass"
    assert result["msg"].startswith("BREAK-GLASS overrides: ta-core: frozen by deny window 'march-release-freeze'")
