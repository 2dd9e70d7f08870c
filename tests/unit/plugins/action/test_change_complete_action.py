"""prodgate.deploy.change_complete as an ansible-core action plugin, run in-process: a change is
recorded as completed in the controller's change register only after it passed the approval gate,
once; the register is never one the run chooses; a rehearsal (--check) records nothing and says so."""
import sys
from pathlib import Path

import pytest
from ansible import context
from ansible.utils.context_objects import CLIArgs

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from action_harness import refusal, run_plugin  # noqa: E402  pylint: disable=wrong-import-position
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.action.change_complete import ActionModule  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger  # noqa: E402

WHERE_REGISTER = ("set `register.db` in /etc/prodgate/controller.yml (the controller's administrator sets it), or the AWX "
                  "credential 'prodgate change register' that injects PRODGATE_REGISTER_DB")


def run_action(args=None, task_vars=None, check=False, task_check=None):
    """One run of the task; ``check`` is the run's --check (the register fixture restores CLIARGS)."""
    return run_plugin(ActionModule, "prodgate.deploy.change_complete", args, task_vars, run_once=False,
                      task_check=check if task_check is None else task_check, run_check=check)


def failure(**kwargs):
    return refusal(run_action, **kwargs)


@pytest.fixture(name="register")
def fixture_register(tmp_path, monkeypatch):
    world = World(tmp_path)
    path = str(tmp_path / "register.db")
    monkeypatch.setenv("PRODGATE_CONTROLLER_CONFIG", str(world.controller(register_db=path)))
    monkeypatch.setattr(context, "CLIARGS", CLIArgs({}))  # restored after the test, whatever run_action set
    return path


def gate_passed(register, change_id="CHG-1001"):
    """What the approval gate leaves in the register when a change passes: its consumed nonces and decision."""
    with Ledger.open(register) as ledger:
        ledger.consume([f"nonce-{change_id}-0000000000"], change_id, decision={"change_id": change_id, "consumed": True})


def completion(register, change_id="CHG-1001"):
    with Ledger.open(register) as ledger:
        return ledger.completion(change_id)


# ---- what a run may not choose ------------------------------------------------------------------

def test_option_ledger_is_refused_naming_where_the_register_belongs(register):
    gate_passed(register)
    exc = failure(args={"ledger": "/tmp/other.db"}, task_vars={"prodgate_change_id": "CHG-1001"})
    assert exc.message == f"task option ledger is not accepted: it is a trust setting of the controller; {WHERE_REGISTER}"
    assert completion(register) is None


@pytest.mark.parametrize("variable", ["prodgate_ledger", "prodgate_register_db"])
def test_run_variables_that_choose_the_register_are_refused(register, variable):
    gate_passed(register)
    exc = failure(task_vars={"prodgate_change_id": "CHG-1001", variable: "/tmp/other.db"})
    assert exc.message == (f"run variable {variable} is not accepted: it would choose a trust setting of the controller; "
                           f"{WHERE_REGISTER}")
    assert completion(register) is None


def test_delivery_gates_is_no_switch(register):
    exc = failure(task_vars={"prodgate_change_id": "CHG-1001", "delivery_gates": "off"})
    assert exc.message.startswith("run variable delivery_gates is not accepted: there is no switch that turns the change "
                                  "controls off")


def test_the_change_id_is_required(register):
    exc = failure(task_vars={})
    assert exc.message == "change_complete needs change_id: set the option(s) or the run variable(s) prodgate_change_id"


# ---- completion ----------------------------------------------------------------------------------

def test_a_change_that_never_passed_the_gate_is_refused(register):
    exc = failure(task_vars={"prodgate_change_id": "CHG-1001"})
    assert exc.message == (f"change CHG-1001 never passed prodgate.deploy.approval_gate in the change register {register}; "
                           "run the gate first (a change is complete only after an approved run)")
    assert completion(register) is None


def test_a_gated_change_is_completed_once(register):
    gate_passed(register)
    first = run_action(task_vars={"prodgate_change_id": "CHG-1001", "awx_job_id": 77})
    assert first["changed"] is True and first["change_id"] == "CHG-1001"
    assert first["msg"] == "change CHG-1001 recorded as completed"
    completed_at = completion(register)[0]
    second = run_action(task_vars={"prodgate_change_id": "CHG-1001"})
    assert second["changed"] is False and second["completed_at"] == completed_at
    assert second["msg"] == f"change CHG-1001 was already completed at {completed_at}"


def test_the_option_names_the_change_over_the_run_variable(register):
    gate_passed(register, "CHG-1002")
    result = run_action(args={"change_id": "CHG-1002"}, task_vars={"prodgate_change_id": "CHG-1001"})
    assert result["change_id"] == "CHG-1002"
    assert completion(register, "CHG-1002") is not None and completion(register, "CHG-1001") is None


def test_check_mode_on_this_task_alone_is_refused(register):
    gate_passed(register)
    exc = failure(task_vars={"prodgate_change_id": "CHG-1001"}, check=False, task_check=True)
    assert exc.message.startswith("check_mode on this task alone is refused")
    assert completion(register) is None


def test_a_rehearsal_of_a_change_not_yet_gated_says_what_would_happen(register):
    result = run_action(task_vars={"prodgate_change_id": "CHG-1001"}, check=True)
    assert result["changed"] is False
    assert result["msg"] == "rehearsal: change CHG-1001 would be recorded as completed after its gate"
    assert completion(register) is None


def test_a_rehearsal_records_nothing_and_does_not_claim_it_did(register):
    """--check: nothing is recorded (plugins/modules/change_complete.py), and the task's message must
    not tell the operator, or the auditor reading the log, that the change was recorded."""
    gate_passed(register)
    result = run_action(task_vars={"prodgate_change_id": "CHG-1001"}, check=True)
    assert completion(register) is None
    assert result["changed"] is True          # the prediction: a real run would record it
    assert "would be recorded" in result["msg"], result["msg"]
