"""prodgate.deploy.approval_gate as an ansible-core action plugin, run in-process the way
ansible-core's own unit tests run action plugins (a Task, a PlayContext, a DataLoader and a Templar):
the adapter refuses what a run must not choose, needs run_once, and passes on the real signed
approvals of a World, once."""
import sys
from pathlib import Path

import pytest
from ansible import context
from ansible.utils.context_objects import CLIArgs

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from action_harness import refusal, run_plugin  # noqa: E402  pylint: disable=wrong-import-position
from approval_world import ARTIFACT, World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.action.approval_gate import ActionModule  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger  # noqa: E402

HOSTS = ["app1", "app2"]
WHERE_POLICY = ("set `policy` in /etc/prodgate/controller.yml (the controller's administrator sets it), or the AWX "
                "credential 'prodgate governance' that injects PRODGATE_POLICY")


def run_action(args=None, task_vars=None, run_once=True, check_mode=False, run_check=False, monkeypatch=None):
    """``monkeypatch``: the run's --check is set (and restored by the world fixture) only when given."""
    return run_plugin(ActionModule, "prodgate.deploy.approval_gate", args, task_vars, run_once=run_once,
                      task_check=check_mode, run_check=run_check if monkeypatch is not None else None, hosts=HOSTS)


def failure(**kwargs):
    return refusal(run_action, **kwargs)


@pytest.fixture(name="world")
def fixture_world(tmp_path, monkeypatch):
    world = World(tmp_path)
    world.register = str(tmp_path / "register.db")
    monkeypatch.setenv("PRODGATE_CONTROLLER_CONFIG", str(world.controller(register_db=world.register)))
    monkeypatch.setattr(context, "CLIARGS", CLIArgs({}))
    return world


def change_vars(world, evidence=None, **over):
    variables = {"prodgate_evidence": evidence or world.write_evidence(world.evidence()),
                 "prodgate_change_id": "CHG-1001", "prodgate_change_type": "version_update", "prodgate_system": "ta-core",
                 "prodgate_environment": "production", "prodgate_version": "3.2.1", "prodgate_artifacts": [ARTIFACT],
                 "prodgate_implementers": ["ivan", "jane"], "prodgate_supervisor": "sam"}
    variables.update(over)
    return variables


# ---- what a run may not choose ------------------------------------------------------------------

def test_option_policy_is_refused_naming_where_it_belongs(world):
    exc = failure(args={"policy": "/home/mallory/policy.yml"}, task_vars=change_vars(world))
    assert exc.message == f"approval gate refused the change: task option policy is not accepted: it is a trust setting of the controller; {WHERE_POLICY}"
    assert exc.result["failed"] is True and exc.result["change_id"] is None


def test_option_ledger_is_refused_naming_the_register_setting(world):
    exc = failure(args={"ledger": "/tmp/empty.db"}, task_vars=change_vars(world))
    assert exc.message == ("approval gate refused the change: task option ledger is not accepted: it is a trust setting of the "
                           "controller; set `register.db` in /etc/prodgate/controller.yml (the controller's administrator sets "
                           "it), or the AWX credential 'prodgate change register' that injects PRODGATE_REGISTER_DB")
    with Ledger.open(world.register) as ledger:  # nothing consumed on the way
        assert ledger.nonces_of("CHG-1001") == []


def test_run_variable_prodgate_policy_is_refused(world):
    exc = failure(task_vars=change_vars(world, prodgate_policy="/home/mallory/policy.yml"))
    assert exc.message == ("approval gate refused the change: run variable prodgate_policy is not accepted: it would choose "
                           f"a trust setting of the controller; {WHERE_POLICY}")


def test_run_variable_delivery_gates_is_no_switch(world):
    exc = failure(task_vars=change_vars(world, delivery_gates=False))
    assert exc.message == ("approval gate refused the change: run variable delivery_gates is not accepted: there is no switch "
                           "that turns the change controls off; remove it (tests use a test policy and signed test approvals)")


def test_without_run_once_the_gate_is_refused(world):
    exc = failure(task_vars=change_vars(world), run_once=False)
    assert exc.message.startswith("approval_gate must run with `run_once: true`: the decision covers every host of the play")
    with Ledger.open(world.register) as ledger:
        assert ledger.nonces_of("CHG-1001") == []


def test_a_missing_change_field_names_its_run_variable(world):
    variables = change_vars(world)
    del variables["prodgate_change_type"]
    exc = failure(task_vars=variables)
    assert exc.message == ("approval gate refused the change: approval_gate needs change_type: set the option(s) or the run "
                           "variable(s) prodgate_change_type")


def test_targets_cannot_narrow_a_production_change(world):
    exc = failure(args={"targets": ["app1"]}, task_vars=change_vars(world))
    assert "the targets option leaves out host(s) of this play: app2" in exc.message


def test_check_mode_on_the_gate_alone_is_refused(world, monkeypatch):
    exc = failure(task_vars=change_vars(world), check_mode=True, run_check=False, monkeypatch=monkeypatch)
    assert "check_mode on this task alone is refused" in exc.message


# ---- the decision -------------------------------------------------------------------------------

def test_signed_approvals_pass_once_and_are_consumed(world):
    variables = change_vars(world)
    result = run_action(task_vars=variables)
    assert result["changed"] is True and result["consumed"] is True and result["rehearsal"] is False
    assert result["change_id"] == "CHG-1001" and result["implementers"] == ["ivan", "jane"] and result["supervisor"] == "sam"
    assert result["msg"].startswith(f"change CHG-1001 approved: {len(result['approvals'])} approvals over plan_submission, ")
    assert result["msg"].endswith("implementers ivan, jane, supervisor sam")
    with Ledger.open(world.register) as ledger:
        assert len(ledger.nonces_of("CHG-1001")) == len(result["approvals"])
    again = failure(task_vars=variables)
    assert again.message.startswith("approval gate refused the change")
    assert "already consumed" in again.message
    assert again.result["change_id"] == "CHG-1001" and again.result["problems"]


def test_a_rehearsal_passes_without_consuming(world, monkeypatch):
    variables = change_vars(world)
    rehearsal = run_action(task_vars=variables, check_mode=True, run_check=True, monkeypatch=monkeypatch)
    assert rehearsal["changed"] is False and rehearsal["consumed"] is False and rehearsal["rehearsal"] is True
    assert rehearsal["msg"].endswith("(rehearsal with --check: approvals not consumed)")
    with Ledger.open(world.register) as ledger:
        assert ledger.nonces_of("CHG-1001") == []
    real = run_action(task_vars=variables, monkeypatch=monkeypatch)
    assert real["consumed"] is True


def test_a_missing_approval_is_refused_with_the_problem_listed(world):
    evidence = world.write_evidence(world.evidence(skip={("go_live", "president_office", "pam")}))
    exc = failure(task_vars=change_vars(world, evidence=evidence))
    assert "stage go_live: approval for role president_office is missing: need 1 of [pam]" in exc.message
    assert "go_live" in exc.result["required_stages"]
    with Ledger.open(world.register) as ledger:
        assert ledger.nonces_of("CHG-1001") == []
