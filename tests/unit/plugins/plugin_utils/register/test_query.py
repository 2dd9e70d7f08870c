"""The read side over synthetic entries: outcome-unknown matching, the Art. 27 form, the Art. 22(5) archive,
the row writers."""
import io

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import RegisterError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.query import (
    RegisterView, change_form, filter_changes, form_markdown, list_runs, system_archive, to_csv, to_markdown, write_csv,
    write_markdown)
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.record import build_intent, build_outcome

GATE = {"name": "Approval gate", "uuid": "g", "module": "prodgate.deploy.approval_gate", "role": None}
WINDOW = {"name": "Window", "uuid": "w", "module": "prodgate.deploy.change_window", "role": None}
COPY = {"name": "Config", "uuid": "c", "module": "ansible.builtin.copy", "role": "app"}


def _run(run, change, version, outcomes=True, close=True, **extra):
    entries = [{"kind": "run_open", "run": run, "ts": f"2026-01-0{run[-1]}T00:00:00Z", "user": "ops", "check_mode": False,
                "change": dict({"id": change, "type": "version_update", "system": "ta", "version": version,
                                "implementers": ["alice", "bob"], "supervisor": "carol"}, **extra)}]
    for task, res in ((GATE, {"changed": True, "change_id": change, "implementers": ["alice", "bob"], "supervisor": "carol",
                              "approvals": [{"stage": "coo_approval", "role": "coo", "person": "dana",
                                             "issued_at": "2026-01-01T00:00:00Z", "key_id": "k1"}]}),
                      (WINDOW, {"changed": False, "allowed": True, "window": {"frozen": False}, "override_used": False}),
                      (COPY, {"changed": True, "diff": {"before": "v=1\n", "after": f"v={version}\n"},
                              "invocation": {"module_args": {"dest": "/etc/ta.conf"}}})):
        entries.append(build_intent(run, "ta1", task, "t"))
        if outcomes:
            entries.append(build_outcome(run, "ta1", task, "ok", res, "t", duration_ms=3))
    if close:
        entries.append({"kind": "run_close", "run": run, "ts": "t2", "stats": {"ta1": {"ok": 3}}, "failed_hosts": []})
    return entries


def _view(*runs):
    entries = [e for r in runs for e in r]
    return RegisterView(list(enumerate(entries, 1)))


def test_form_carries_request_approvals_window_people_diffs_and_rollback():
    view = _view(_run("r1", "CHG-1", "2.0"), _run("r2", "CHG-2", "1.0", rollback_of="CHG-1"))
    form = change_form(view, "CHG-1")
    assert form["approvals"][0]["approvals"][0]["person"] == "dana"
    assert form["window"][0]["allowed"] is True
    assert form["verified_implementers"] == ["alice", "bob"] and form["verified_supervisor"] == "carol"
    assert form["per_host"]["ta1"][-1]["diff"][0] == {"before": "v=1\n", "after": "v=2.0\n"}
    assert [r["change_id"] for r in form["rollback"]] == ["CHG-2"]
    md = form_markdown(form)
    assert "coo_approval / coo: dana" in md and "+v=2.0" in md and "-v=1" in md
    with pytest.raises(RegisterError, match="no run of change"):
        change_form(view, "CHG-404")


def test_form_lists_an_automatic_rollback_inside_the_change():
    switch = {"name": "Switch current back to the previous release", "uuid": "s", "module": "ansible.builtin.file",
              "role": "release", "tags": ["prodgate_rollback"]}
    entries = _run("r1", "CHG-1", "2.0", close=False)
    entries.append(build_intent("r1", "ta1", switch, "t"))
    entries.append(build_outcome("r1", "ta1", switch, "ok", {"changed": True, "invocation": {"module_args": {
        "src": "/opt/ta/releases/1.9", "dest": "/opt/ta/current"}}}, "t"))
    untagged = dict(switch, uuid="u", tags=[])  # the same kind of change without the tag is not a rollback
    entries.append(build_outcome("r1", "ta2", untagged, "ok", {"changed": True}, "t"))
    form = change_form(_view(entries), "CHG-1")
    assert [(r["host"], r["to"]) for r in form["rolled_back"]] == [("ta1", "1.9")]
    assert "- ta1: switched back to 1.9 in this change" in form_markdown(form)
    plain = change_form(_view(_run("r2", "CHG-2", "2.0")), "CHG-2")
    assert plain["rolled_back"] == [] and form_markdown(plain).rstrip().endswith("## Rollback\n\n- none")


def test_form_says_which_stage_the_gate_passed_and_what_is_pending():
    entries = _run("r1", "CHG-1", "2.0", outcomes=False)
    trial = {"changed": False, "change_id": "CHG-1", "consumed": False, "performed_stage": "trial_run",
             "checked_stages": ["plan_submission", "coo_approval"],
             "pending_stages": [{"stage": "trial_run", "roles": ["it_pm"]}, {"stage": "go_live", "roles": ["president_office"]}],
             "approvals": [{"stage": "coo_approval", "role": "coo", "person": "dana", "issued_at": "t", "key_id": "k1"}]}
    entries.insert(-1, build_outcome("r1", "ta1", GATE, "ok", trial, "t"))
    form = change_form(_view(entries), "CHG-1")
    assert form["approvals"][0]["performed_stage"] == "trial_run" and form["approvals"][0]["consumed"] is False
    assert "- gate passed for the trial_run stage (approvals not consumed; pending: trial_run, go_live)" in form_markdown(form)


def test_intents_without_outcome_are_outcome_unknown_and_runs_not_closed():
    view = _view(_run("r1", "CHG-1", "2.0"), _run("r3", "CHG-3", "3.0", outcomes=False, close=False))
    unknown = filter_changes(view, status="unknown")
    assert {(c["run"], c["task"]) for c in unknown} == {("r3", "Approval gate"), ("r3", "Window"), ("r3", "Config")}
    states = {r["run"]: r["state"] for r in list_runs(view)}
    assert states["r1"] == "ok" and states["r3"].startswith("not closed")


def test_archive_current_version_configuration_history_failures():
    view = _view(_run("r1", "CHG-1", "2.0"), _run("r2", "CHG-2", "2.1"), _run("r3", "CHG-3", "3.0", outcomes=False, close=False))
    arch = system_archive(view, "ta")
    assert arch["current_version"] == "2.1"
    assert arch["configuration"]["ta1"]["Config"]["args"] == {"dest": "/etc/ta.conf"}
    assert [h["change_id"] for h in arch["history"]] == ["CHG-1", "CHG-2", "CHG-3"]
    assert {f["status"] for f in arch["failures"]} >= {"outcome unknown"}


def test_row_writers_count_rows_and_the_text_forms_match_them():
    rows = [{"a": 1, "b": "x|y"}, {"a": None, "b": "z\nw"}]
    out = io.StringIO()
    assert write_csv(rows, out, ["a", "b"]) == 2 and to_csv(rows, ["a", "b"]) == out.getvalue()
    out = io.StringIO()
    assert write_markdown(rows, out, ["a", "b"]) == 2
    assert to_markdown(rows, ["a", "b"]) == out.getvalue() == "| a | b |\n|---|---|\n| 1 | x\\|y |\n|  | z w |\n"
    assert write_csv([], io.StringIO(), ["a"]) == 0
