"""`prodgate report build` and `prodgate report sign` (cli/report.py): the HTML picture from a signed
policy and a real register, signed records that the report shows, and refusals that name the fix."""
import json

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli import main
from .cli_run import run

from ..register.register_world import MonthOfChanges, World


@pytest.fixture(name="month", scope="module")
def fixture_month(tmp_path_factory):
    return MonthOfChanges(tmp_path_factory.mktemp("cli-report"))


@pytest.fixture(name="env")
def fixture_env(month, monkeypatch, tmp_path):
    month.reg.environ(monkeypatch, tmp_path)
    return month


def build(capsys, month, out, *extra):
    return run(capsys, "report", "build", "--out", out, "--policy", month.world.policy_path, "--today", "2025-12-30",
               "--evidence", month.evidence, *extra)


def test_build_writes_the_pages_of_the_months_with_changes(env, capsys, tmp_path):
    out = tmp_path / "site"
    code, stdout, err = build(capsys, env, out, "--json")
    data = json.loads(stdout)
    assert code == 0 and err == "" and data["ok"]
    assert data["months"] == ["2025-11", "2025-12"]  # from the first change's month to today's
    assert data["index"] == str(out / "index.html") and data["pages"] == len(list(out.glob("*.html"))) == 11
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "CHG-UP120 · Rolled back" in index and "CHG-PLAN" in index
    health = (out / "health.html").read_text(encoding="utf-8")
    assert "Verified: " in health and "and the register matches its witness" in health
    code, stdout, _err = build(capsys, env, out, "--from", "2025-12", "--to", "2026-01")
    # every change keeps its page (CHG-GL of November too); the calendar shows the months asked for
    assert code == 0 and stdout.strip() == f"report: 11 pages for 2025-12..2026-01; open file://{out / 'index.html'}"
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "January 2026" in index and "November 2025" not in index


def test_a_signed_failure_analysis_closes_the_open_alert(env, capsys, tmp_path):
    records = tmp_path / "records"
    key = env.world.write_key("paula")
    code, stdout, err = run(capsys, "report", "sign", "failure-analysis", "CHG-UP120", "--key", key,
                            "--policy", env.world.policy_path, "--out", records / "CHG-UP120.json",
                            "--cause", "the migration locked the ledger table", "--action", "migrate in the trial run",
                            "--owner", "jane")
    assert code == 0, err
    assert stdout.strip() == f"failure-analysis of CHG-UP120 signed by paula: {records / 'CHG-UP120.json'}"
    code, stdout, _err = build(capsys, env, tmp_path / "site", "--records", records, "--json")
    assert code == 0 and json.loads(stdout)["record_problems"] == []
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "Failure analysis of" not in index
    assert "the migration locked the ledger table" in (tmp_path / "site" / "change-CHG-UP120.html").read_text(encoding="utf-8")


def test_a_forged_record_is_listed_not_shown(env, capsys, tmp_path):
    records = tmp_path / "records"
    stranger = World(tmp_path / "stranger")
    code, _out, err = run(capsys, "report", "sign", "failure-analysis", "CHG-UP120", "--key", stranger.write_key("paula"),
                          "--policy", stranger.policy_path, "--out", records / "forged.json", "--cause", "none",
                          "--action", "none", "--owner", "nobody")
    assert code == 0, err
    code, stdout, _err = build(capsys, env, tmp_path / "site", "--records", records, "--json")
    problems = json.loads(stdout)["record_problems"]
    assert code == 0 and len(problems) == 1 and problems[0].startswith(str(records / "forged.json"))
    assert "Failure analysis of" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")


def test_only_the_it_project_manager_signs_a_failure_analysis(env, capsys, tmp_path):
    code, stdout, err = run(capsys, "report", "sign", "failure-analysis", "CHG-UP120", "--key", env.world.write_key("ivan"),
                            "--policy", env.world.policy_path, "--out", tmp_path / "fa.json", "--cause", "c",
                            "--action", "a", "--owner", "o")
    assert code == 1 and stdout == ""
    assert err.strip() == "prodgate: error: a failure-analysis is signed by the it_pm (Art. 23-24); ivan holds it_ops"
    assert not (tmp_path / "fa.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["mlps-filing", "payroll", "--filed-on", "2025-12-01", "--reference", "R"],
     "system 'payroll' is not in the policy's catalogue: one of ta-core, crm, wiki"),
    (["evidence", "ta-core", "--article", "99", "--evidence", "binder 3"],
     "--article '99': evidence is recorded for one of 11, 13-15, 21, 29-30"),
    (["mlps-filing", "ta-core", "--filed-on", "2025-12-01"], "a mlps_filing record needs reference"),
])
def test_sign_refuses_a_record_the_policy_does_not_allow(env, capsys, tmp_path, argv, message):
    code, _out, err = run(capsys, "report", "sign", *argv, "--key", env.world.write_key("rita"),
                          "--policy", env.world.policy_path, "--out", tmp_path / "r.json")
    assert code == 1 and err.strip() == f"prodgate: error: {message}"


def test_sign_refuses_a_key_that_is_not_in_the_policy(env, capsys, tmp_path):
    stranger = World(tmp_path / "stranger")
    code, _out, err = run(capsys, "report", "sign", "mlps-filing", "ta-core", "--key", stranger.write_key("rita"),
                          "--policy", env.world.policy_path, "--out", tmp_path / "r.json", "--filed-on", "2025-12-01",
                          "--reference", "R")
    assert code == 1 and "is not a current key of anyone in policy" in err


def test_sign_never_overwrites_a_record(env, capsys, tmp_path):
    target = tmp_path / "filing.json"
    target.write_text("{}", encoding="utf-8")
    code, _out, err = run(capsys, "report", "sign", "mlps-filing", "ta-core", "--key", env.world.write_key("rita"),
                          "--policy", env.world.policy_path, "--out", target, "--filed-on", "2025-12-01", "--reference", "R")
    assert code == 1 and err.startswith(f"prodgate: error: {target}: File exists") and target.read_text() == "{}"


@pytest.mark.parametrize("extra, message", [
    (["--from", "2025-13"], "--from '2025-13' is not a month: write it as YYYY-MM"),
    (["--from", "2026-01", "--to", "2025-12"], "--from 2026-01 is after --to 2025-12"),
    (["--from", "2022-01", "--to", "2025-12"], "48 months asked for: show at most 36 (--from, --to)"),
])
def test_build_refuses_months_it_cannot_show(env, capsys, tmp_path, extra, message):
    code, _out, err = build(capsys, env, tmp_path / "site", *extra)
    assert code == 1 and err.strip() == f"prodgate: error: {message}"


def test_without_a_policy_build_and_sign_name_the_option(env, capsys, tmp_path):
    code, _out, err = run(capsys, "report", "build", "--out", tmp_path / "site")
    assert code == 1 and err.strip() == ("prodgate: error: no policy: pass --policy FILE (the signed policy) or set up "
                                         "the controller trust settings")
    code, _out, err = run(capsys, "report", "sign", "mlps-filing", "ta-core", "--key", "k", "--out", tmp_path / "r.json")
    assert code == 1 and "no policy: pass --policy FILE so the record can name who signs it" in err
    assert not (tmp_path / "site").exists()


def test_build_needs_an_output_folder(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "build"])
    assert exc.value.code == 2 and "the following arguments are required: --out" in capsys.readouterr().err
