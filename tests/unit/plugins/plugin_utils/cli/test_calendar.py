"""`prodgate calendar ...` with and without --json."""
import json

import yaml

from .cli_run import run


def test_days_table_and_json(capsys):
    code, out, _err = run(capsys, "calendar", "days", "--from", "2025-09-27", "--to", "2025-10-01")
    assert code == 0
    assert "2025-09-28  Sun  yes      no       make-up working day for National Day and Mid-autumn Festival" in out
    code, out, _err = run(capsys, "calendar", "days", "--from", "2024-02-08", "--to", "2024-02-10", "--json")
    rows = json.loads(out)
    assert [(r["date"], r["working_day"], r["trading_day"]) for r in rows] == [
        ("2024-02-08", True, True), ("2024-02-09", True, False), ("2024-02-10", False, False)]
    assert rows[2]["holiday"] == "Spring Festival" and rows[1]["exchange_closure"] == "Spring Festival Eve"


def test_is_working_day_exit_codes(capsys):
    assert run(capsys, "calendar", "is-working-day", "2025-09-28")[0] == 0
    code, out, _err = run(capsys, "calendar", "is-working-day", "2025-10-03", "--json")
    assert code == 1 and json.loads(out)["holiday"] == "National Day and Mid-autumn Festival"


def test_add_working_days_negative(capsys):
    code, out, _err = run(capsys, "calendar", "add-working-days", "2025-10-09", "-3")
    assert code == 0 and out.strip() == "2025-09-28"
    code, out, _err = run(capsys, "calendar", "add-working-days", "2025-12-31", "1", "--json")
    assert json.loads(out)["result"] == "2026-01-04"


def test_missing_year_is_one_clear_error(capsys):
    code, out, err = run(capsys, "calendar", "is-working-day", "2027-01-04")
    assert code == 1 and "calendar has no data for 2027" in err
    code, out, _err = run(capsys, "calendar", "is-working-day", "2027-01-04", "--json")
    assert code == 1 and json.loads(out)["ok"] is False


DRAFT = {
    "systems": [{"id": "ta-core", "category": "core_business"}],
    "freeze_windows": [
        {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session"},
        {"name": "weeknights", "kind": "allow", "cron": "0 19 * * MON-FRI", "duration": "12h", "categories": ["core_business"]},
    ],
}


def test_windows_and_explain_from_a_draft(tmp_path, capsys):
    draft = tmp_path / "draft.yml"
    draft.write_text(yaml.safe_dump(DRAFT))
    code, out, _err = run(capsys, "calendar", "windows", "--draft", str(draft), "--system", "ta-core",
                          "--from", "2025-09-29T08:00", "--to", "2025-09-29T12:00", "--json")
    data = json.loads(out)
    assert code == 0 and not data["verified"]
    assert [(i["start"][11:16], i["end"][11:16], i["state"], i["decided_by"]) for i in data["intervals"]] == [
        ("08:00", "09:15", "frozen", ["weeknights"]), ("09:15", "11:30", "frozen", ["trading-sessions"]),
        ("11:30", "12:00", "frozen", ["weeknights"])]
    code, out, _err = run(capsys, "calendar", "explain", "--draft", str(draft), "--system", "ta-core", "--at", "2025-09-29T20:00")
    assert code == 0 and "open (inside allow window 'weeknights') until 2025-09-30 07:00 Asia/Shanghai" in out
    code, out, _err = run(capsys, "calendar", "explain", "--draft", str(draft), "--system", "ta-core", "--at", "2025-09-29T10:00", "--json")
    assert code == 1 and json.loads(out)["next_open"] == "2025-09-29T19:00:00+08:00"


def test_windows_need_a_policy(capsys, monkeypatch):
    monkeypatch.delenv("PRODGATE_POLICY", raising=False)
    code, _out, err = run(capsys, "calendar", "explain", "--system", "ta-core", "--at", "2025-09-29T10:00")
    assert code == 1 and "pass --policy FILE" in err
