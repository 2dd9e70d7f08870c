"""Issue 14's acceptance, through ansible-playbook: a controller whose clock reads 2027.

The clock is injected the one way a run may: the task's ``now`` option, honoured only in an
environment the controller's trust settings list in ``test_clock_environments`` (issue 11's
controller.yml; never production). With a signed 2027 calendar pack named by the signed policy,
2027 changes pass or are refused by the same rules as 2026 changes; without the pack they fail
closed with a message that names ``prodgate calendar draft``.
"""
import json
import os
import stat
import sys

import pytest
import yaml

import change_window_fixtures as fx

sys.path.insert(0, os.path.join(fx.REPO, "tests", "unit", "plugins", "plugin_utils", "governance"))
import calendar_pack_world as world  # noqa: E402  (the signed-pack helpers of the unit tests)

WINDOWS = [
    {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session", "categories": ["core_business"]},
    {"name": "year-end-close", "kind": "deny", "calendar": "year_end_close"},
]
# The same instants one year apart (weekday for weekday where it matters), and a make-up Sunday.
CLOCKS = [
    "2026-03-02T10:00", "2027-03-01T10:00",      # Monday in a trading session: frozen
    "2026-03-02T20:00", "2027-03-01T20:00",      # Monday evening: open
    "2026-09-20T10:00", "2027-09-26T10:00",      # make-up Sunday: a working day without trading: open
    "2026-12-31T16:00",                          # the year-end close, which ends in 2027
]


def _controller(folder, policy_path, root, clock_envs):
    path = os.path.join(folder, "controller.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"policy": policy_path, "policy_root": root, "register": {"db": os.path.join(folder, "register.db")},
                        "test_clock_environments": clock_envs}, handle)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def _run(folder, environment, clocks, clock_envs=("staging",)):
    """change_window at each clock for ta-core in ``environment``: (registered results by clock, output)."""
    policy_path = os.path.join(folder, "policy.yml")
    config = _controller(folder, policy_path, os.path.join(folder, "governance-root.yml"), list(clock_envs))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    fx.dump(os.path.join(folder, "hosts.yml"), {"all": {"hosts": {"app1": host}}})
    play = {"hosts": "app1", "gather_facts": False, "tasks": [
        {"name": "change window", "prodgate.deploy.change_window": {
            "system": "ta-core", "environment": environment, "change_type": "version_update", "now": "{{ item }}"},
         "loop": clocks, "register": "windows", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ windows.results | to_json }}", "dest": os.path.join(folder, "results.json")}},
    ]}
    fx.dump(os.path.join(folder, "play.yml"), [play])
    run = fx.run_playbook(folder, "play.yml", "hosts.yml", extra_env={"TZ": "UTC", "PRODGATE_CONTROLLER_CONFIG": config})
    assert run.returncode == 0, run.stdout + run.stderr
    with open(os.path.join(folder, "results.json"), encoding="utf-8") as handle:
        return {r["item"]: r for r in json.load(handle)}, run.stdout + run.stderr


@pytest.fixture(name="folder")
def fixture_folder(tmp_path):
    os.chmod(tmp_path, 0o700)
    return str(tmp_path)


def test_2027_changes_follow_the_2026_rules_with_a_signed_pack(folder):
    world.world(folder, windows=WINDOWS, lead_time=0)
    res, _out = _run(folder, "staging", CLOCKS)
    assert all(r["clock"] == "test" for r in res.values() if "clock" in r), res
    for year_2026, year_2027 in (("2026-03-02T10:00", "2027-03-01T10:00"),):
        for clock in (year_2026, year_2027):
            assert res[clock]["failed"] and not res[clock]["allowed"], res[clock]
            day = clock[:10]
            assert f"ta-core: frozen by deny window 'trading-sessions' until {day} 11:30 Asia/Shanghai; " \
                   f"next open slot {day} 11:30 Asia/Shanghai" in res[clock]["msg"]
    for clock in ("2026-03-02T20:00", "2027-03-01T20:00", "2026-09-20T10:00", "2027-09-26T10:00"):
        assert res[clock]["allowed"] and not res[clock].get("failed"), res[clock]
        assert res[clock]["msg"].startswith("ta-core: open (no window applies)")
    # The year-end close now has a known end: the first 2027 trading day's session, then its morning session.
    closing = res["2026-12-31T16:00"]
    assert closing["failed"] and "frozen by deny window 'year-end-close' until 2027-01-04 11:30 Asia/Shanghai" in closing["msg"]
    assert closing["calendar_data_ends"] == "2027-12-31"


def test_without_the_pack_2027_fails_closed_naming_prodgate_calendar_draft(folder):
    world.world(folder, with_pack=False, windows=WINDOWS, lead_time=0)
    res, out = _run(folder, "staging", ["2027-03-01T20:00", "2026-12-31T16:00", "2026-11-29T20:00"])
    later = res["2027-03-01T20:00"]
    assert later["failed"] and "calendar has no data for 2027" in later["msg"] and "`prodgate calendar draft --year 2027" in later["msg"]
    closing = res["2026-12-31T16:00"]
    assert closing["failed"] and "until unknown; next open slot unknown (calendar has no data for 2027" in closing["msg"]
    # Before the end, the change passes and the result warns that the data ends within 60 days.
    early = res["2026-11-29T20:00"]
    assert early["allowed"] and "WARNING: calendar data ends 2026-12-31 (32 day(s) after 2026-11-29" in early["msg"]
    assert early["calendar_data_ends"] == "2026-12-31"
    assert "[WARNING]: calendar data ends 2026-12-31 (32 day(s) after 2026-11-29" in " ".join(out.split()), out   # Ansible shows it


@pytest.mark.parametrize("environment,clock_envs", [("production", ("staging",)), ("staging", ())])
def test_the_test_clock_is_refused_where_the_controller_does_not_allow_it(folder, environment, clock_envs):
    world.world(folder, windows=WINDOWS, lead_time=0)
    res, _out = _run(folder, environment, ["2027-03-01T20:00"], clock_envs)
    refused = res["2027-03-01T20:00"]
    assert refused["failed"] and "sets a test clock" in refused["msg"] and "test_clock_environments" in refused["msg"], refused
