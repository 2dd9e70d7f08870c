"""Freeze windows as the policy writes them (schedule/windows.py): selectors, absolute times, and
validation errors that name the file, the path and the fix. Their semantics over time: test_freeze.py."""
import datetime as dt

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import PolicyError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.windows import parse_windows
from .test_freeze import TARGET, TRADING, at


@pytest.mark.parametrize("selector,target,applies", [
    ({"systems": ["ta-*"]}, TARGET, True),
    ({"systems": ["crm"]}, TARGET, False),
    ({"categories": ["core_business"], "environments": ["production"]}, TARGET, True),
    ({"categories": ["core_business"], "environments": ["staging"]}, TARGET, False),
    ({"change_types": ["version_update", "environment"]}, TARGET, True),
    ({"change_types": ["routine"]}, TARGET, False),
    ({"exclude": {"change_types": ["version_update"]}}, TARGET, False),
    ({"systems": ["*"], "exclude": {"systems": ["oa"]}}, TARGET, True),
])
def test_selectors(selector, target, applies):
    window = dict({"name": "w", "kind": "deny", "cron": "* * * * *", "duration": "1m"}, **selector)
    assert parse_windows([window], "p.yml")[0].applies_to(target) is applies


@pytest.mark.parametrize("window,path,fragment", [
    ({"kind": "deny", "cron": "* * * * *", "duration": "1h"}, "name", "needs a name"),
    ({"name": "w", "kind": "block", "cron": "* * * * *", "duration": "1h"}, "kind", "must be deny or allow"),
    ({"name": "w", "kind": "deny"}, "", "exactly one schedule"),
    ({"name": "w", "kind": "deny", "cron": "* * * * *", "start": "2025-01-01T00:00", "end": "2025-01-02T00:00"}, "", "exactly one"),
    ({"name": "w", "kind": "deny", "cron": "* * * * *"}, "duration", "needs a duration"),
    ({"name": "w", "kind": "deny", "cron": "* * * * *", "duration": "1w"}, "duration", "90m, 6h"),
    ({"name": "w", "kind": "deny", "start": "2025-01-02T00:00", "end": "2025-01-01T00:00"}, "", "end must be after start"),
    ({"name": "w", "kind": "deny", "start": "yesterday", "end": "2025-01-01T00:00"}, "start", "ISO 8601"),
    ({"name": "w", "kind": "deny", "calendar": "lunar_new_year"}, "calendar", "not a calendar predicate"),
    ({"name": "w", "kind": "deny", "calendar": "trading_session", "sessions": ["11:30-09:15"]}, r"sessions\[0\]", "ends before"),
    ({"name": "w", "kind": "deny", "calendar": "trading_session", "exchange": "XNYS"}, "exchange", "not supported"),
    ({"name": "w", "kind": "deny", "calendar": "year_end_close", "span": {"start": "first_working_day 9:00", "end": "01-02 00:00"}},
     "span.start", "other end"),
    ({"name": "w", "kind": "deny", "calendar": "non_working_day", "systems": "ta-core"}, "systems", "non-empty list"),
    ({"name": "w", "kind": "deny", "calendar": "non_working_day", "change_types": ["hotfix"]}, "change_types", "Art. 25"),
    ({"name": "w", "kind": "deny", "calendar": "non_working_day", "system": ["ta-core"]}, "", "unknown key"),
])
def test_parse_errors_name_file_path_and_fix(window, path, fragment):
    with pytest.raises(PolicyError) as err:
        parse_windows([TRADING, window], "/etc/prodgate/policy.yml")
    assert str(err.value).startswith("/etc/prodgate/policy.yml: freeze_windows[1]" + ("." if path else ""))
    if path:
        assert f"freeze_windows[1].{path.replace(chr(92), '')}" in str(err.value)
    assert fragment.replace("\\", "") in str(err.value)


def test_duplicate_names_and_non_list():
    with pytest.raises(PolicyError, match=r"freeze_windows\[1\].name: 'trading-sessions' is also freeze_windows\[0\]"):
        parse_windows([TRADING, TRADING], "p.yml")
    with pytest.raises(PolicyError, match="freeze_windows must be a list"):
        parse_windows({"a": 1}, "p.yml")
    assert parse_windows(None, "p.yml") == []


def test_absolute_times_with_offsets_and_dates():
    windows = parse_windows([{"name": "w", "kind": "deny", "start": "2025-06-10T01:00:00+00:00", "end": dt.date(2025, 6, 11)}], "p")
    assert windows[0].start == at("2025-06-10T09:00").timestamp() and windows[0].end == at("2025-06-11T00:00").timestamp()
