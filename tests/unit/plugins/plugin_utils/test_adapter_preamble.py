"""The preamble the action adapters share (trust.pop_refused, trust.task_change), the CLI groups'
help without a sub-command (cli._common.add_group) and the register's row writers (issue 16)."""
import argparse
import io

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli._common import add_group
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import TrustError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.query import to_csv, to_markdown, write_csv, write_markdown
from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import pop_refused, task_change


def test_pop_refused_removes_and_returns_only_the_refused_options_present():
    args = {"policy": "/tmp/own.yml", "change_id": "CHG-1"}
    assert pop_refused(args, ("policy", "policy_root", "ledger")) == ["policy"]
    assert args == {"change_id": "CHG-1"}
    assert pop_refused(args, ("ledger",)) == []


def test_task_change_options_win_over_run_variables_and_values_are_templated():
    seen = []

    def template(value):
        seen.append(value)
        return value.upper() if isinstance(value, str) else value

    task_vars = {"prodgate_change_id": "chg-from-vars", "prodgate_system": "pay", "ansible_play_hosts_all": ["a", "b"]}
    change, run_vars = task_change({"change_id": "CHG-OPT"}, task_vars, template)
    assert change.change_id == "CHG-OPT" and change.system == "PAY" and change.targets == ["a", "b"]
    assert run_vars["prodgate_system"] == "PAY" and "pay" in seen
    assert ["a", "b"] not in seen  # the play's hosts are not templated


def test_task_change_accepts_no_task_vars():
    change, run_vars = task_change({"change_id": "CHG-1"}, None, lambda v: v)
    assert change.change_id == "CHG-1" and run_vars == {"ansible_play_hosts_all": []}


def test_task_change_refuses_run_overrides_and_refused_options_by_name():
    with pytest.raises(TrustError, match="run variable prodgate_policy is not accepted"):
        task_change({}, {"prodgate_policy": "/home/mallory/own.yml"}, lambda v: v, ["ledger"])
    with pytest.raises(TrustError, match="task option ledger is not accepted: .*register.db"):
        task_change({}, {}, lambda v: v, ["ledger"])


def test_a_group_without_a_subcommand_prints_its_own_help_and_exits_2(capsys):
    parser = argparse.ArgumentParser(prog="prodgate")
    sub = add_group(parser.add_subparsers(dest="group"), "things", "things_command", help="things")
    sub.add_parser("list").set_defaults(handler=lambda args: 0)
    args = parser.parse_args(["things"])
    assert args.handler(args) == 2
    assert "usage: prodgate things [-h] SUBCOMMAND" in capsys.readouterr().out
    args = parser.parse_args(["things", "list"])
    assert args.things_command == "list" and args.handler(args) == 0


def test_row_writers_count_rows_and_the_text_forms_match_them():
    rows = [{"a": 1, "b": "x|y"}, {"a": None, "b": "z\nw"}]
    out = io.StringIO()
    assert write_csv(rows, out, ["a", "b"]) == 2 and to_csv(rows, ["a", "b"]) == out.getvalue()
    out = io.StringIO()
    assert write_markdown(rows, out, ["a", "b"]) == 2
    assert to_markdown(rows, ["a", "b"]) == out.getvalue() == "| a | b |\n|---|---|\n| 1 | x\\|y |\n|  | z w |\n"
    assert write_csv([], io.StringIO(), ["a"]) == 0
