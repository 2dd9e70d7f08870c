"""The policy's schema (governance/policy_schema.py): `policy check` and the gate refuse a malformed
freeze window with the window validator's message, and malformed key entries (issue 11, R5)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy_schema  # noqa: E402


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


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


def test_r5_a_key_listed_twice_for_one_person_is_a_schema_error(world):
    ivan = next(p for p in world.doc["people"] if p["id"] == "ivan")
    ivan["keys"] = [dict(ivan["keys"][0], revoked=True), dict(ivan["keys"][0])]
    problems = policy_schema.validate_document(world.doc)
    assert any("the same key is listed twice for ivan" in p for p in problems), problems


def test_r5_unknown_fields_in_key_entries_are_schema_errors(world):
    world.doc["governance"]["keys"][0]["revokd"] = True
    rex = next(p for p in world.doc["people"] if p["id"] == "ivan")
    rex["keys"][0]["revoke"] = True
    problems = " | ".join(policy_schema.validate_document(world.doc))
    assert "governance.keys[0]: unknown field(s) ['revokd']" in problems and "unknown field(s) ['revoke']" in problems
