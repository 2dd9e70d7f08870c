"""`policy check` and the gate refuse a malformed freeze window with the window validator's message."""
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy_schema


def _problems(doc):
    chk = policy_schema.Checker()
    policy_schema._check_foreign(chk, doc)
    return chk.problems


def test_bad_timezone_in_calendar_is_named():
    problems = _problems({"freeze_windows": [], "calendar": {"timezone": "Mars/Olympus"}})
    assert len(problems) == 1
    assert "calendar.timezone: unknown time zone 'Mars/Olympus'" in problems[0]


def test_bad_window_key_names_the_window():
    problems = _problems({"freeze_windows": [{"name": "x", "kind": "deny", "colour": "red"}]})
    assert len(problems) == 1
    assert problems[0].startswith("freeze_windows: freeze_windows[0]")
    assert "colour" in problems[0]


def test_valid_windows_pass():
    doc = {"freeze_windows": [{"name": "trading", "kind": "deny", "calendar": "trading_session"}]}
    assert _problems(doc) == []
