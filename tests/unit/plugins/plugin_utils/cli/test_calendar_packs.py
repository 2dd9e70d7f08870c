"""`prodgate calendar status / draft / diff / sign`, and `windows` / `explain` at the data's end."""
import copy
import datetime as dt
import json

import yaml

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import calendar_pack, dsse
from .cli_run import run
from ..governance import calendar_pack_world as world  # the signed-pack helpers of governance/test_calendar_pack.py


def test_status_shows_the_last_date_and_days_left_and_fails_within_the_warning(capsys):
    code, out, err = run(capsys, "calendar", "status", "--at", "2026-11-29")
    assert code == 1
    assert out.splitlines()[0].split() == ["CALENDAR", "LAST", "DATE", "DAYS", "LEFT", "FROM", "FILE"]
    assert "XSHG trading days  2026-12-31  32         collection" in out
    assert "calendar data ends 2026-12-31 (within 60 days of 2026-11-29): `prodgate calendar draft --year 2027" in err
    code, out, _err = run(capsys, "calendar", "status", "--at", "2026-06-01", "-f", "json")
    rows = json.loads(out)
    assert code == 0 and [r["days_left"] for r in rows] == [213, 213, 213] and not any(r["warning"] for r in rows)
    assert run(capsys, "calendar", "status", "--at", "2026-06-01", "--warn-days", "300")[0] == 1


def test_status_counts_the_packs_the_policy_names(tmp_path, capsys):
    _gov, policy_path, root = world.world(str(tmp_path))
    code, out, _err = run(capsys, "calendar", "status", "--policy", policy_path, "--root", root, "--at", "2026-11-29", "--json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["last_date"] == "2027-12-31" and rows[0]["last_year_from"] == "pack"
    assert rows[0]["last_year_path"] == str(tmp_path / "calendar-2027.yml")


def test_draft_review_sign_and_use(tmp_path, capsys):
    out_file = tmp_path / "calendar-2027.yml"
    code, out, _err = run(capsys, "calendar", "draft", "--year", "2027", "--source", "holidays", "--out", str(out_file))
    assert code == 0 and f"wrote draft {out_file} for 2027 from holidays" in out and "(provisional)" in out
    text = out_file.read_text()
    assert text.startswith("# DRAFT calendar pack for 2027") and "provisional: true" in text
    assert run(capsys, "calendar", "draft", "--year", "2027", "--source", "holidays", "--out", str(out_file))[0] == 1
    # The draft agrees with its own source; a draft is never signed.
    assert run(capsys, "calendar", "diff", str(out_file), "--against", "holidays")[0] == 0
    gov = world.Governance(count=1, threshold=1)
    key_path = tmp_path / "gov.key"
    dsse.write_private_key(str(key_path), gov.keys[0])
    root = gov.write_root(str(tmp_path / "root.yml"))
    code, _out, err = run(capsys, "calendar", "sign", str(out_file), "--key", str(key_path), "--root", root)
    assert code == 1 and "refusing to sign" in err and "provisional draft" in err
    # The reviewed pack (here the test data) is signed and named in the policy.
    reviewed = tmp_path / "reviewed-2027.yml"
    reviewed.write_text(calendar_pack.dump_pack(copy.deepcopy(world.YEAR_2027)))
    stranger = tmp_path / "stranger.key"
    dsse.write_private_key(str(stranger), dsse.generate_private_key())
    code, _out, err = run(capsys, "calendar", "sign", str(reviewed), "--key", str(stranger), "--root", root)
    assert code == 1 and "is not one of the governance keys" in err
    code, out, _err = run(capsys, "calendar", "sign", str(reviewed), "--key", str(key_path), "--root", root, "--json")
    signed = json.loads(out)
    assert code == 0 and signed["signatures"] == 1 and signed["year"] == 2027
    assert signed["policy_reference"] == {"file": "reviewed-2027.yml", "sha256": calendar_pack.read_pack(str(reviewed))[1], "version": 1}
    policy_path = world.write_policy(str(tmp_path / "policy.yml"), gov, [("reviewed-2027.yml", signed["sha256"])])
    code, out, err = run(capsys, "calendar", "add-working-days", "2026-12-29", "3")
    assert code == 1 and "`prodgate calendar draft --year 2027" in err      # the collection alone has no 2027
    code, out, _err = run(capsys, "calendar", "add-working-days", "2026-12-29", "3", "--policy", policy_path, "--root", root)
    assert code == 0 and out.strip() == "2027-01-04"      # 12-30, 12-31, then after the New Year holiday
    code, out, _err = run(capsys, "calendar", "is-working-day", "2027-09-26", "--policy", policy_path, "--root", root)
    assert code == 0 and out.strip() == "2027-09-26 is a working day (make-up working day for National Day)"
    code, out, _err = run(capsys, "calendar", "explain", "--policy", policy_path, "--root", root, "--system", "ta-core",
                          "--at", "2027-03-01T10:00")
    assert code == 1 and "frozen by deny window 'trading-sessions' until 2027-03-01 11:30 Asia/Shanghai" in out


def test_diff_lists_the_days_that_differ(tmp_path, capsys):
    draft = calendar_pack.draft(2026, "holidays")
    draft["makeup_working_days"] = [m for m in draft["makeup_working_days"] if m["date"] != "2026-10-10"]
    path = tmp_path / "draft-2026.yml"
    path.write_text(calendar_pack.draft_text(draft))
    code, out, _err = run(capsys, "calendar", "diff", str(path), "--against", "chinesecalendar")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["DATE", "DAY", "FIELD", "DRAFT"] and lines[1].split() == ["2026-10-10", "Sat", "working", "day", "no", "yes"]
    code, _out, err = run(capsys, "calendar", "diff", str(path), "--against", str(tmp_path / "missing.yml"))
    assert code == 1 and "cannot be read" in err


DRAFT_POLICY = {
    "systems": [{"id": "ta-core", "category": "core_business"}],
    "freeze_windows": [{"name": "trading-sessions", "kind": "deny", "calendar": "trading_session"}],
}


def test_windows_across_into_a_year_without_data_report_up_to_the_end(tmp_path, capsys):
    draft = tmp_path / "draft.yml"
    draft.write_text(yaml.safe_dump(DRAFT_POLICY))
    code, out, _err = run(capsys, "calendar", "windows", "--draft", str(draft), "--system", "ta-core",
                          "--from", "2026-12-31T08:00", "--to", "2027-01-05T00:00", "--json")
    data = json.loads(out)
    assert code == 0 and data["complete"] is False and data["data_ends"] == "2026-12-31"
    assert data["intervals"][-1]["end"] == "2027-01-01T00:00:00+08:00"
    assert [(i["start"][11:16], i["state"]) for i in data["intervals"]] == [
        ("08:00", "open"), ("09:15", "frozen"), ("11:30", "open"), ("13:00", "frozen"), ("15:00", "open")]
    assert "calendar has no data for 2027" in data["note"] and "prodgate calendar draft" in data["note"]
    code, out, _err = run(capsys, "calendar", "windows", "--draft", str(draft), "--system", "ta-core",
                          "--from", "2026-12-31T08:00", "--to", "2027-01-05T00:00")
    assert code == 0 and out.splitlines()[-1].startswith("unknown after 2027-01-01 00:00: calendar has no data for 2027")
    code, _out, err = run(capsys, "calendar", "windows", "--draft", str(draft), "--system", "ta-core",
                          "--from", "2027-01-02", "--to", "2027-01-05")
    assert code == 1 and "calendar has no data for 2027" in err


def test_explain_defaults_to_now(tmp_path, capsys):
    draft = tmp_path / "draft.yml"
    draft.write_text(yaml.safe_dump(dict(DRAFT_POLICY, freeze_windows=[])))
    before = dt.datetime.now(dt.timezone.utc)
    code, out, _err = run(capsys, "calendar", "explain", "--draft", str(draft), "--system", "ta-core", "--json")
    data = json.loads(out)
    moment = dt.datetime.fromisoformat(data["at"])
    assert code == 0 and data["open"] and moment.utcoffset() == dt.timedelta(hours=8)
    assert before - dt.timedelta(seconds=1) <= moment <= dt.datetime.now(dt.timezone.utc)
