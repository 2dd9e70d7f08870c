"""prodgate.deploy.change_window through ansible-playbook, against local hosts, with a test clock.

Real keys, a signed policy and signed approvals (issue 3's format). The changes are in `staging`,
the environment where the test's controller trust settings (controller.yml) allow a test clock, so
that the ``now`` option is honoured; one case proves it is refused otherwise (never in production).
"""
import datetime as dt
import json
import sys

import pytest

import change_window_fixtures as fx

SH = fx.SH
HOSTS = ["app1", "app2", "app3", "app4"]
WINDOWS = [
    {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session"},
    {"name": "year-end-close", "kind": "deny", "calendar": "year_end_close"},
]
VARS = {"prodgate_change_id": "CHG-7", "prodgate_system": "ta-core", "prodgate_environment": "staging",
        "prodgate_change_type": "version_update", "prodgate_version": "3.2.1", "prodgate_artifacts": fx.BINDING["artifacts"]}


@pytest.fixture(name="lab")
def fixture_lab(tmp_path):
    signers = fx.Signers()
    fx.write_policy(str(tmp_path / "policy.yml"), signers, WINDOWS)
    for name in ("policy.yml", "altered.yml"):
        fx.write_controller(str(tmp_path), str(tmp_path / name), signers, name=f"controller-{name}")
    fx.write_controller(str(tmp_path), str(tmp_path / "policy.yml"), signers, test_clock_environments=(),
                        name="controller-no-test-clock.yml")
    fx.dump(str(tmp_path / "hosts.yml"), {"all": {"hosts": {h: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                                                            for h in HOSTS}}})
    plan = fx.envelope(signers, "plan_submission", "hugo", "it_head", dt.datetime(2025, 9, 24, 10, 0, tzinfo=SH),
                       planned_start=dt.datetime(2025, 9, 29, 8, 30, tzinfo=SH))
    late_plan = fx.envelope(signers, "plan_submission", "hugo", "it_head", dt.datetime(2025, 9, 26, 10, 0, tzinfo=SH),
                            planned_start=dt.datetime(2025, 9, 29, 8, 30, tzinfo=SH))
    override = fx.envelope(signers, "emergency_override", "carol", "coo", dt.datetime(2025, 9, 29, 9, 0, tzinfo=SH),
                           not_after=dt.datetime(2025, 9, 29, 18, 0, tzinfo=SH), reason="settlement defect INC-88, fix verified in staging")
    fx.write_evidence(str(tmp_path / "evidence"), [plan])
    fx.write_evidence(str(tmp_path / "evidence-override"), [plan, override])
    fx.write_evidence(str(tmp_path / "evidence-late"), [late_plan])
    return tmp_path


def _play(lab, name, plays, controller="controller-policy.yml"):
    fx.dump(str(lab / name), plays)
    return fx.run_playbook(str(lab), name, "hosts.yml",   # the controller runs in UTC
                           extra_env={"TZ": "UTC", "PRODGATE_CONTROLLER_CONFIG": str(lab / controller)})


def test_rolling_change_stops_before_the_batch_that_reaches_the_freeze(lab):
    (lab / "clock").write_text("0")
    play = {
        "name": "rolling upgrade", "hosts": "all", "gather_facts": False, "serial": 1,
        "vars": dict(VARS, prodgate_evidence=str(lab / "evidence"),
                     # each batch takes 15 minutes; the 4th starts at 09:25, inside the 09:15 session
                     ticks=["2025-09-29T08:40", "2025-09-29T08:55", "2025-09-29T09:10", "2025-09-29T09:25"]),
        "tasks": [
            {"name": "change window before this batch", "prodgate.deploy.change_window": {"now": "{{ ticks[lookup('file', 'clock') | int] }}"},
             "register": "window"},
            {"name": "deploy", "ansible.builtin.copy": {"content": "{{ window.evaluated_at }}\n", "dest": str(lab) + "/deployed-{{ inventory_hostname }}"}},
            {"name": "time passes", "ansible.builtin.copy": {"content": "{{ lookup('file', 'clock') | int + 1 }}", "dest": str(lab / "clock")},
             "run_once": True},
        ],
    }
    result = _play(lab, "rolling.yml", [play])
    out = result.stdout
    assert result.returncode != 0, out
    assert sorted(p.name for p in lab.glob("deployed-*")) == ["deployed-app1", "deployed-app2", "deployed-app3"], out
    assert (lab / "deployed-app3").read_text().strip() == "2025-09-29T09:10:00+08:00"
    assert ("change_window refused: ta-core: frozen by deny window 'trading-sessions' until 2025-09-29 11:30 Asia/Shanghai; "
            "next open slot 2025-09-29 11:30 Asia/Shanghai") in out, out
    assert "fatal: [app4]" in out


def _case(lab, evidence, now, controller="controller-policy.yml", extra=None):
    task = {"prodgate.deploy.change_window": dict({"now": now}, **(extra or {})), "register": "w", "ignore_errors": True}
    play = {"hosts": "app1", "gather_facts": False,
            "vars": dict(VARS, prodgate_evidence=str(lab / evidence)),
            "tasks": [task, {"ansible.builtin.copy": {"content": "{{ w | to_json }}", "dest": str(lab / "result.json")}}]}
    run = _play(lab, "case.yml", [play], controller=controller)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((lab / "result.json").read_text())


def test_frozen_change_is_refused_without_override(lab):
    res = _case(lab, "evidence", "2025-09-29T10:00")
    assert res["failed"] and res["frozen"] and not res["override_used"]
    assert res["msg"].startswith("change_window refused: ta-core: frozen by deny window 'trading-sessions' until "
                                 "2025-09-29 11:30 Asia/Shanghai; next open slot 2025-09-29 11:30 Asia/Shanghai; no emergency override")


def test_emergency_override_passes_and_is_reported(lab):
    res = _case(lab, "evidence-override", "2025-09-29T10:00")
    assert not res.get("failed") and res["allowed"] and res["frozen"] and res["override_used"]
    assert res["override"]["approvals"][0]["person"] == "carol"
    assert res["override"]["approvals"][0]["reason"] == "settlement defect INC-88, fix verified in staging"
    assert "EMERGENCY OVERRIDE" in res["msg"]
    # The override is bounded: after its not_after it no longer counts.
    assert _case(lab, "evidence-override", "2025-09-29T18:00")["failed"] is False   # 18:00 is open anyway
    later = _case(lab, "evidence-override", "2025-09-30T10:00")
    assert later["failed"] and "no emergency override" in later["msg"] and "expired at 2025-09-29T18:00:00+08:00" in later["msg"]


def test_open_slot_with_lead_time_met(lab):
    res = _case(lab, "evidence", "2025-09-29T12:00")
    assert res["allowed"] and res["open"] and res["lead_time"]["ok"] and res["lead_time"]["submit_by"] == "2025-09-25"
    assert res["window"]["open_until"] == "2025-09-29T13:00:00+08:00"
    assert res["clock"] == "test"


def test_late_plan_is_refused(lab):
    res = _case(lab, "evidence-late", "2025-09-29T12:00")
    assert res["failed"]
    assert "lead time not met (Art. 17): the plan was submitted 2025-09-26 but an installation on 2025-09-29 needs it by 2025-09-25" in res["msg"]


def test_test_clock_is_refused_unless_the_controller_allows_it_for_the_environment(lab):
    res = _case(lab, "evidence", "2025-09-29T12:00", controller="controller-no-test-clock.yml")
    assert res["failed"] and "option `now` sets a test clock, which environment staging does not allow" in res["msg"]


def test_year_without_calendar_data_fails_closed(lab):
    res = _case(lab, "evidence", "2027-03-01T12:00")
    assert res["failed"] and "calendar has no data for 2027 (the data ends 2026-12-31): draft it with `prodgate calendar draft" in res["msg"]


def test_altered_policy_is_refused(lab):
    text = (lab / "policy.yml").read_text().replace("trading-sessions", "trading-session")
    (lab / "altered.yml").write_text(text)
    res = _case(lab, "evidence", "2025-09-29T12:00", controller="controller-altered.yml")
    assert res["failed"] and "signatures do not verify" in res["msg"]


def test_missing_inputs_are_named(lab):
    play = {"hosts": "app1", "gather_facts": False, "tasks": [
        {"prodgate.deploy.change_window": {"system": "ta-core"}, "register": "w", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ w | to_json }}", "dest": str(lab / "result.json")}}]}
    assert _play(lab, "missing.yml", [play]).returncode == 0
    res = json.loads((lab / "result.json").read_text())
    assert "change_window needs environment, change_type" in res["msg"] and "prodgate_environment" in res["msg"]


def test_check_mode_is_the_same(lab):
    play = {"hosts": "app1", "gather_facts": False, "check_mode": True,
            "vars": dict(VARS, prodgate_evidence=str(lab / "evidence")),
            "tasks": [{"prodgate.deploy.change_window": {"now": "2025-09-29T10:00"}}]}
    run = _play(lab, "check.yml", [play])
    assert run.returncode != 0 and "frozen by deny window 'trading-sessions'" in run.stdout
