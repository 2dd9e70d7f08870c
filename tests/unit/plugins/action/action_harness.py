"""Runs one of the collection's action plugins in-process the way ansible-core's own unit tests run
action plugins: a Task (a MagicMock of the class), a PlayContext, a DataLoader and a Templar.
Shared by the test_*_action.py files of this folder."""
from unittest.mock import MagicMock

import pytest
from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.template import Templar
from ansible.utils.context_objects import CLIArgs

HOSTS = ("app1", "app2")


def run_plugin(action_class, name, args=None, task_vars=None, run_once=True, task_check=False, run_check=None, hosts=HOSTS):
    """The plugin's result for one task. ``task_check`` is the task's check mode, ``run_check`` the
    run's --check (None leaves the run's options alone; the test's fixture restores them)."""
    task = MagicMock(Task)
    task.args = dict(args or {})
    task.run_once = run_once
    task.check_mode = task_check
    task.async_val = 0
    task.action = name
    if run_check is not None:
        context.CLIARGS = CLIArgs({"check": run_check})
    loader = DataLoader()
    action = action_class(task, MagicMock(), PlayContext(), loader, Templar(loader=loader), None)
    return action.run(task_vars={"ansible_play_hosts_all": list(hosts), **(task_vars or {})})


def refusal(run, **kwargs):
    """The AnsibleActionFail that ``run(**kwargs)`` raises (the test fails if it passes)."""
    with pytest.raises(AnsibleActionFail) as exc:
        run(**kwargs)
    return exc.value
