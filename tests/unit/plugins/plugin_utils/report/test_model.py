"""The report's facts (report/model.py) from a real register and a signed policy: each change with its
outcome and day, planned changes from signed plan submissions, month grids with freezes, holidays
and changes, the register's health, calendar data status, MLPS go-live from the register and the
evidence checklist."""
import datetime as dt

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.calendar_pack import calendar_for_policy
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.audit import gate_status
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.query import RegisterView, load
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import verify_register
from ansible_collections.prodgate.deploy.plugins.plugin_utils.report import model
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.windows import CHANGE_TYPES

from ..register.register_world import CST, MonthOfChanges, Register, World, change, install


@pytest.fixture(name="facts", scope="module")
def fixture_facts(tmp_path_factory):
    month = MonthOfChanges(tmp_path_factory.mktemp("model"))
    policy = month.world.policy()
    store = open_store(month.reg.db)
    view = RegisterView(load(store))
    yield {"month": month, "policy": policy, "store": store, "view": view,
           "cal": calendar_for_policy(policy.raw, policy.path, None)}
    store.close()


def by_id(changes):
    return {c["change_id"]: c for c in changes}


def test_each_change_in_the_register_with_its_outcome_and_day(facts):
    changes = model.executed_changes(facts["view"], CST)
    assert [c["change_id"] for c in changes] == ["CHG-GL", "CHG-UP110", "CHG-UP120", "CHG-ADHOC"]
    got = {c["change_id"]: (c["outcome"], c["day"], c["page"]) for c in changes}
    assert got == {"CHG-GL": ("completed", dt.date(2025, 11, 3), "change-CHG-GL.html"),
                   "CHG-UP110": ("completed", dt.date(2025, 12, 15), "change-CHG-UP110.html"),
                   "CHG-UP120": ("rolled_back", dt.date(2025, 12, 16), "change-CHG-UP120.html"),
                   "CHG-ADHOC": ("ungated", dt.date(2025, 12, 18), "change-CHG-ADHOC.html")}
    rolled = by_id(changes)["CHG-UP120"]
    assert rolled["needs_analysis"] and [r["host"] for r in rolled["rolled_back"]] == ["app1"]


def test_the_day_of_a_change_is_the_day_in_the_policys_zone(tmp_path):
    reg = Register(tmp_path)
    reg.run(change("CHG-EARLY"), "2025-12-16", [install("app1", "1.1.0", "1.0.0\n")], at="07:00")  # 2025-12-15 23:00 UTC
    with open_store(reg.db) as store:
        view = RegisterView(load(store))
    assert model.executed_changes(view, CST)[0]["day"] == dt.date(2025, 12, 16)
    assert model.executed_changes(view, dt.timezone.utc)[0]["day"] == dt.date(2025, 12, 15)


def test_the_gate_audit_decides_the_outcome_and_a_signed_analysis_closes_a_failure(facts):
    def gate_of(cid):
        return gate_status(facts["store"].bodies(), cid, policy=facts["policy"])
    analysis = {"cause": "lock", "action": "trial first", "owner": "jane", "signer": "paula", "key_id": "ab" * 32,
                "signed_at": "2025-12-17T09:00:00+00:00"}
    changes = by_id(model.executed_changes(facts["view"], CST, {"CHG-UP120": analysis}, gate_of))
    assert changes["CHG-ADHOC"]["form"]["gate"]["status"] == "UNGATED" and changes["CHG-ADHOC"]["outcome"] == "ungated"
    assert changes["CHG-UP110"]["form"]["gate"]["status"] != "UNGATED"
    assert changes["CHG-UP120"]["analysis"]["cause"] == "lock"


def test_planned_changes_come_from_signed_plan_submissions_only(facts, tmp_path):
    month, policy = facts["month"], facts["policy"]
    envelopes = model.load_envelopes(month.evidence)
    planned = model.planned_changes(policy, envelopes + [month.plan], CST)  # the same plan twice counts once
    plan = [p for p in planned if p["change_id"] == "CHG-PLAN"]
    assert plan == [{"change_id": "CHG-PLAN", "system": "ta-core", "day": dt.date(2025, 12, 22), "time": "20:00",
                     "by": "henry", "type": "version_update", "version": "1.4.0"}]
    stranger = World(tmp_path / "stranger")
    forged = stranger.approve("plan_submission", "it_head", "henry", stranger.binding(change_id="CHG-FORGED"))
    approval = month.world.approve("change_approval", "it_head", "henry", month.world.binding(change_id="CHG-NOPLAN"))
    ids = {p["change_id"] for p in model.planned_changes(policy, [forged, approval], CST)}
    assert ids == set()


def test_load_envelopes_walks_an_evidence_root_and_tolerates_its_absence(facts, tmp_path):
    envelopes = model.load_envelopes(facts["month"].evidence)
    assert len(envelopes) > 10 and all("payload" in e for e in envelopes)
    assert model.load_envelopes(str(tmp_path / "none")) == [] and model.load_envelopes(None) == []


def test_a_month_grid_shows_changes_freezes_and_the_days_kind(facts):
    schedules, _settings = model.schedules_for(facts["policy"], facts["cal"], ["ta-core", "wiki"])
    assert len(schedules["ta-core"]) == len(CHANGE_TYPES)
    changes = model.executed_changes(facts["view"], CST)
    planned = model.planned_changes(facts["policy"], [facts["month"].plan], CST)
    grid = model.month_grid(2025, 12, facts["cal"], schedules, changes, planned, dt.date(2025, 12, 30))
    assert grid["title"] == "December 2025" and grid["id"] == "2025-12"
    cells = {c["date"]: c for week in grid["weeks"] for c in week}
    assert all(week[0]["date"].weekday() == 0 for week in grid["weeks"])  # Monday first
    tuesday = cells[dt.date(2025, 12, 16)]
    assert [c["change_id"] for c in tuesday["changes"]] == ["CHG-UP120"] and tuesday["working"] and tuesday["trading"]
    trading = [f for f in tuesday["freezes"] if f["name"] == "trading-sessions"]
    assert trading and trading[0]["trading"] and trading[0]["systems"] == ["ta-core"] and not trading[0]["all_day"]
    assert "09:" in trading[0]["when"] and "15:00" in trading[0]["when"]
    saturday = cells[dt.date(2025, 12, 20)]
    assert not saturday["working"] and not any(f["name"] == "trading-sessions" for f in saturday["freezes"])
    assert [p["change_id"] for p in cells[dt.date(2025, 12, 22)]["planned"]] == ["CHG-PLAN"]
    assert cells[dt.date(2025, 12, 30)]["today"] and not cells[dt.date(2025, 12, 1)]["today"]
    outside = [c for c in cells.values() if not c["in_month"]]
    assert outside and all(c["changes"] == [] and c["freezes"] == [] for c in outside)


def test_a_holiday_is_named_in_its_cell(facts):
    schedules, _settings = model.schedules_for(facts["policy"], facts["cal"], ["wiki"])
    grid = model.month_grid(2026, 1, facts["cal"], schedules, [], [], dt.date(2026, 1, 2))
    new_year = next(c for week in grid["weeks"] for c in week if c["date"] == dt.date(2026, 1, 1))
    assert new_year["holiday"] and not new_year["working"] and not new_year["no_data"]


def test_months_between_crosses_the_year():
    assert model.months_between((2025, 11), (2026, 2)) == [(2025, 11), (2025, 12), (2026, 1), (2026, 2)]
    assert model.months_between((2026, 3), (2026, 2)) == []


def test_register_health_names_the_last_checkpoint_and_the_changes_awaiting_retrospective(facts):
    store = facts["store"]
    report = verify_register(store)
    changes = model.executed_changes(facts["view"], CST)
    health = model.register_health(store, report, [], [], changes)
    assert health["verified"] and health["verify"] is report
    cp = health["last_checkpoint"]
    assert cp["seq"] == store.head()[0] and cp["count"] == cp["seq"] - 1 and len(cp["root"]) == 64
    assert [c["change_id"] for c in health["retrospective"]] == ["CHG-ADHOC"]
    empty = model.register_health(None, None, [], [], [])
    assert not empty["verified"] and empty["last_checkpoint"] is None


def test_calendar_status_warns_before_the_data_ends(facts):
    cal = facts["cal"]
    late = model.calendar_status(cal, dt.date(2026, 12, 1))
    assert late["last_covered"] == dt.date(2026, 12, 31) and late["days_left"] == 30 and late["warning"]
    early = model.calendar_status(cal, dt.date(2026, 3, 1))
    assert not early["warning"] and early["years"] == [2024, 2025, 2026]


def test_the_go_live_of_an_mlps_system_comes_from_the_register(facts):
    changes = model.executed_changes(facts["view"], CST)
    rows = {r["system"]: r for r in model.mlps_rows(facts["policy"], changes, [], dt.date(2025, 12, 30))}
    assert set(rows) == {"ta-core", "crm"}
    ta = rows["ta-core"]
    assert ta["go_live"] == dt.date(2025, 11, 3) and ta["go_live_source"] == "register (CHG-GL)"
    assert ta["deadline"] == dt.date(2025, 12, 3) and ta["overdue"] and ta["status"] == "OVERDUE by 27 day(s)"
    assert rows["crm"]["status"] == "not live yet"


def test_the_evidence_checklist_shows_the_latest_record_per_article():
    records = [{"kind": "evidence", "system": "ta-core", "article": "21", "signed_at": "2026-01-01T00:00:00+00:00",
                "evidence": "old"},
               {"kind": "evidence", "system": "ta-core", "article": "21", "signed_at": "2026-02-01T00:00:00+00:00",
                "evidence": "new"},
               {"kind": "evidence", "system": "crm", "article": "11", "signed_at": "2026-02-01T00:00:00+00:00"}]
    rows = {r["article"]: r for r in model.evidence_checklist("ta-core", records)}
    assert list(rows) == [a for a, _r in model.EVIDENCE_CHECKLIST]
    assert rows["21"]["record"]["evidence"] == "new" and rows["11"]["record"] is None


def test_slug_keeps_page_names_safe():
    assert model.slug("CHG-1/../x y") == "CHG-1_.._x_y" and model.slug("ta-core") == "ta-core"


class _Policy:
    def __init__(self, systems):
        self.raw = {"systems": systems}


def test_mlps_filing_status():
    policy = _Policy([{"id": "ta", "name": "TA", "mlps_level": 3, "go_live": "2026-01-05"},
                      {"id": "crm", "mlps_level": 2}, {"id": "wiki", "mlps_level": 1, "go_live": "2026-01-01"}])
    today = dt.date(2026, 2, 10)
    rows = {r["system"]: r for r in model.mlps_rows(policy, [], [], today)}
    assert set(rows) == {"ta", "crm"}
    assert rows["ta"]["deadline"] == dt.date(2026, 2, 4) and rows["ta"]["overdue"]
    assert rows["ta"]["status"] == "OVERDUE by 6 day(s)" and rows["crm"]["status"] == "not live yet"
    filed = model.mlps_rows(policy, [], [{"system": "ta", "filed_on": "2026-02-01", "reference": "R", "signer": "rita"}], today)
    assert filed[0]["status"] == "filed" and not filed[0]["overdue"]
    late = model.mlps_rows(policy, [], [{"system": "ta", "filed_on": "2026-02-09", "reference": "R", "signer": "rita"}], today)
    assert late[0]["status"] == "filed late"
    assert model.mlps_rows(policy, [], [], dt.date(2026, 1, 20))[0]["status"] == "due in 15 day(s)"


def test_a_break_glass_change_waits_for_its_retrospective_until_closed():
    open_bg = {"outcome": "break_glass", "form": {"gate": {"status": "BREAK-GLASS open"}}}
    closed = {"outcome": "break_glass", "form": {"gate": {"status": "BREAK-GLASS closed"}}}
    ungated = {"outcome": "ungated", "form": {"gate": {"status": "UNGATED"}}}
    done = {"outcome": "completed", "form": {"gate": {"status": "gated"}}}
    waits = model._waits_for_retrospective  # pylint: disable=protected-access
    assert [waits(c) for c in (open_bg, closed, ungated, done)] == [True, False, True, False]
