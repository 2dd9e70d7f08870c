"""What a change is (governance/change.py): its fields from the run variables, normalised once for
the gate, the window, the completion, the callback and the CLI (issue 11, R10)."""
import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ApprovalError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.change import build_change, change_types, problems, require


def test_r10_implementers_as_a_string_are_the_same_people_everywhere():
    change = build_change(run_vars={"prodgate_implementers": "alice, bob"})
    assert change.implementers == ["alice", "bob"] and change.register_fields()["implementers"] == ["alice", "bob"]


def test_r10_the_window_and_the_gate_cover_the_plays_hosts_not_the_batch():
    change = build_change(run_vars={"ansible_play_hosts_all": ["app1", "app2"], "ansible_play_batch": ["app1"]})
    assert change.targets == ["app1", "app2"]


def test_a_task_option_wins_over_the_run_variable_and_blanks_fall_back():
    change = build_change(options={"change_id": " CHG-9 ", "system": "", "targets": ["db1"]},
                          run_vars={"prodgate_change_id": "CHG-1", "prodgate_system": "ta-core",
                                    "ansible_play_hosts_all": ["app1"]})
    assert change.change_id == "CHG-9" and change.system == "ta-core" and change.targets == ["db1"]


def test_the_binding_and_the_register_fields_carry_the_same_change():
    change = build_change(run_vars={"prodgate_change_id": "CHG-1", "prodgate_change_type": "version_update",
                                    "prodgate_system": "ta-core", "prodgate_environment": "production",
                                    "prodgate_version": 3.2, "prodgate_implementers": ["ivan", "jane"],
                                    "ansible_play_hosts_all": ["app1"]}, options={"emergency": True})
    binding = change.binding(launcher="ivan")
    assert binding["version"] == "3.2" and binding["launcher"] == "ivan" and binding["emergency"] is True
    assert binding["targets"] == ["app1"] and binding["implementers"] == ["ivan", "jane"]
    fields = change.register_fields()
    assert (fields["id"], fields["type"], fields["version"]) == ("CHG-1", "version_update", "3.2")


def test_problems_name_the_run_variable_and_the_art25_change_types():
    assert problems(build_change(run_vars={"prodgate_change_id": "C1", "prodgate_change_type": "version_update"})) == []
    found = problems(build_change(run_vars={"prodgate_change_type": "whim"}))
    assert found[0].startswith("prodgate_change_id is not set")
    assert "prodgate_change_type 'whim' is not one of" in found[1] and "version_update" in found[1]
    assert "version_update" in change_types() and "initial_go_live" in change_types()


def test_require_names_each_missing_field_and_its_run_variable():
    change = build_change(run_vars={"prodgate_change_id": "C1", "prodgate_system": "ta-core"})
    with pytest.raises(ApprovalError, match=r"the gate needs change_type, environment: .* prodgate_change_type, prodgate_environment$"):
        require(change, "the gate")
    require(change, "the report", fields=("change_id", "system"))
