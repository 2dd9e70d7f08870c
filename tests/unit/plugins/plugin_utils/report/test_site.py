"""The static pages (report/site.py): build_site writes the calendar, the changes, a page per change,
register health and the MLPS filings into a folder, with each change id and outcome on them, the
open failure analysis and the overdue filing as alerts, and text from the register escaped."""
import datetime as dt
import re

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.calendar_pack import calendar_for_policy
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.query import RegisterView, load
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import verify_register
from ansible_collections.prodgate.deploy.plugins.plugin_utils.report import model
from ansible_collections.prodgate.deploy.plugins.plugin_utils.report.site import build_site

from ..register.register_world import CST, MonthOfChanges, Register, change

TODAY = dt.date(2025, 12, 30)


@pytest.fixture(name="month", scope="module")
def fixture_month(tmp_path_factory):
    return MonthOfChanges(tmp_path_factory.mktemp("site"))


def health_report(store, ok=True):
    """The register check as `prodgate report build` hands it over: verify_register's report with what was
    checked besides the chain (cli/report.py _health)."""
    report = dict(verify_register(store), checked={"witness": True}, unanchored=[])
    if not ok:
        report.update(ok=False, unanchored=["no trusted register key"])
    return report


def build(month, out, records=(), verify_ok=True, **kwargs):
    policy = month.world.policy()
    cal = calendar_for_policy(policy.raw, policy.path, None)
    with open_store(month.reg.db) as store:
        view = RegisterView(load(store))
        return build_site(str(out), policy, cal, view, CST, TODAY, [(2025, 11), (2025, 12)],
                          envelopes=[month.plan], records=list(records), verify_report=health_report(store, verify_ok),
                          store=store, built="2025-12-30 09:00 CST", **kwargs)


def text(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def test_the_pages_are_written_with_the_changes_and_their_outcomes(month, tmp_path):
    written = build(month, tmp_path / "site")
    assert set(written) == {"index.html", "system-ta-core.html", "system-crm.html", "system-wiki.html", "changes.html",
                            "change-CHG-GL.html", "change-CHG-UP110.html", "change-CHG-UP120.html",
                            "change-CHG-ADHOC.html", "health.html", "mlps.html"}
    assert all(p.startswith(str(tmp_path / "site")) for p in written.values())
    index = text(written["index.html"])
    for cid in ("CHG-GL", "CHG-UP110", "CHG-UP120", "CHG-ADHOC"):
        assert f'href="change-{cid}.html"' in index
    assert "CHG-UP120 · Rolled back" in index and "CHG-PLAN" in index
    changes = text(written["changes.html"])
    assert re.search(r"CHG-UP120.*?Rolled back", changes, re.S) and re.search(r"CHG-ADHOC.*?Ungated", changes, re.S)


def test_the_page_of_the_rolled_back_change_says_so(month, tmp_path):
    page = text(build(month, tmp_path / "site")["change-CHG-UP120.html"])
    assert '<span class="badge o-rolled_back" id="outcome">Rolled back</span>' in page
    assert "app1 was switched back to the earlier release" in page  # the task named no release folder (src)
    assert "Health check" in page


def test_open_failure_analysis_and_overdue_filing_are_alerts_until_signed(month, tmp_path):
    index = text(build(month, tmp_path / "open")["index.html"])
    assert 'Failure analysis of <a href="change-CHG-UP120.html">CHG-UP120</a>' in index
    assert "the IT project manager has not signed one" in index
    assert 'MLPS filing of <a href="mlps.html">ta-core</a> is OVERDUE by 27 day(s)' in index
    records = [{"kind": "failure_analysis", "change_id": "CHG-UP120", "cause": "the migration locked the table",
                "action": "run migrations in the trial run", "owner": "jane", "signer": "paula", "key_id": "ab" * 32,
                "signed_at": "2025-12-17T09:00:00+00:00"},
               {"kind": "mlps_filing", "system": "ta-core", "filed_on": "2025-12-01", "reference": "MLPS-42",
                "signer": "rita", "key_id": "cd" * 32, "signed_at": "2025-12-01T09:00:00+00:00"}]
    written = build(month, tmp_path / "closed", records=records)
    index = text(written["index.html"])
    assert "Failure analysis of" not in index and "MLPS filing of" not in index
    assert "the migration locked the table" in text(written["change-CHG-UP120.html"])
    assert "MLPS-42" in text(written["mlps.html"])


def test_a_register_that_does_not_verify_is_an_alert_and_on_the_health_page(month, tmp_path):
    written = build(month, tmp_path / "bad", verify_ok=False,
                    record_problems=["records/x.json: no signature verifies with a current key"])
    assert 'The change register did <a href="health.html">not verify</a>' in text(written["index.html"])
    health = text(written["health.html"])
    assert "<strong>NOT verified:</strong> no trusted register key" in health
    assert "records/x.json: no signature verifies with a current key" in health
    assert "CHG-ADHOC" in health  # ungated: waits for its retrospective registration
    good = build(month, tmp_path / "good")
    assert "not verify" not in text(good["index.html"])
    assert "Verified: " in text(good["health.html"]) and "and the register matches its witness" in text(good["health.html"])


def test_text_from_the_register_is_escaped(tmp_path, month):
    reg = Register(tmp_path / "reg")
    task = {"name": "<script>alert(1)</script>", "module": "ansible.builtin.shell"}
    reg.run(change("CHG-XSS"), "2025-12-16", [("app1", task, "ok", {"changed": True})])
    policy = month.world.policy()
    with open_store(reg.db) as store:
        written = build_site(str(tmp_path / "site"), policy, calendar_for_policy(policy.raw, policy.path, None),
                             RegisterView(load(store)), CST, TODAY, [(2025, 12)], store=store)
    page = text(written["change-CHG-XSS.html"])
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_without_a_register_the_calendar_and_planned_changes_are_still_written(month, tmp_path):
    policy = month.world.policy()
    written = build_site(str(tmp_path / "site"), policy, calendar_for_policy(policy.raw, policy.path, None), None, CST,
                         TODAY, model.months_between((2025, 12), (2026, 1)), envelopes=[month.plan])
    assert not any(name.startswith("change-") for name in written)
    index = text(written["index.html"])
    assert "CHG-PLAN" in index and "January 2026" in index and "December 2025" in index


def test_a_bare_register_check_renders_the_health_page(month, tmp_path):
    """verify_register's own report, without what `report build` adds (checked, unanchored), is enough for
    the health page: the template does not assume the command's extra fields."""
    policy = month.world.policy()
    cal = calendar_for_policy(policy.raw, policy.path, None)
    with open_store(month.reg.db) as store:
        view = RegisterView(load(store))
        pages = build_site(str(tmp_path), policy, cal, view, CST, TODAY, [(2025, 12)], envelopes=[month.plan],
                           verify_report=verify_register(store), store=store, built="2025-12-30 09:00 CST")
    health = [path for name, path in pages.items() if "health" in name]
    assert health and "Verified:" in text(health[0])
