"""Calendar packs: signed by the governance keys, pinned by the policy, no rollback, fail closed;
drafts from the installed libraries; how far the data reaches."""
import copy
import datetime as dt
import os

import pytest
import yaml

from . import calendar_pack_world as world
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import calendar_pack, dsse, policy
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy_schema
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import CalendarError, PolicyError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.calendar import default_calendar

D = dt.date


@pytest.fixture(name="signed")
def fixture_signed(tmp_path):
    gov, policy_path, root = world.world(str(tmp_path))
    return gov, policy.load_policy(policy_path, root=root), root


def test_a_signed_pack_named_by_the_policy_adds_its_year(signed):
    _gov, pol, root = signed
    cal = calendar_pack.calendar_for_policy(pol.raw, pol.path, root)
    assert cal.available_years() == [2024, 2025, 2026, 2027]
    assert cal.origin(2027) == "pack" and cal.origin(2026) == "collection"
    assert cal.is_working_day(D(2027, 9, 26)) and not cal.is_trading_day(D(2027, 9, 26))   # make-up Sunday, no trading
    assert cal.is_working_day(D(2027, 2, 5)) and not cal.is_trading_day(D(2027, 2, 5))     # exchange closure
    assert not cal.is_working_day(D(2027, 10, 7))
    assert cal.add_working_days(D(2027, 10, 11), -3) == D(2027, 9, 30)                     # 10-09 (Sat) and 10-08 count
    assert cal.add_working_days(D(2026, 12, 31), 1) == D(2027, 1, 4)                        # across the new year
    assert cal.last_covered_date(D(2026, 11, 29)) == D(2027, 12, 31)
    # The shared default calendar is untouched.
    assert default_calendar().available_years() == [2024, 2025, 2026]


def test_the_pack_must_be_the_file_the_policy_names(signed, tmp_path):
    _gov, pol, root = signed
    pack = tmp_path / "calendar-2027.yml"
    pack.write_text(pack.read_text().replace("2027-09-26", "2027-09-25"))
    with pytest.raises(CalendarError, match=r"calendar-2027.yml: sha256 is [0-9a-f]{64}, the policy names [0-9a-f]{64}: "
                                            r"the file is not the pack the governance keys signed"):
        calendar_pack.calendar_for_policy(pol.raw, pol.path, root)


def test_a_missing_pack_fails_closed(signed, tmp_path):
    _gov, pol, root = signed
    os.remove(tmp_path / "calendar-2027.yml")
    with pytest.raises(CalendarError, match="calendar pack .*calendar-2027.yml cannot be read"):
        calendar_pack.calendar_for_policy(pol.raw, pol.path, root)


def _policy_with_pack(tmp_path, gov, **pack_args):
    digest = world.write_pack(str(tmp_path / "calendar-2027.yml"), gov, **pack_args)
    path = world.write_policy(str(tmp_path / "policy.yml"), gov, [("calendar-2027.yml", digest)])
    return policy.load_policy(path)


def test_pack_signatures_below_the_threshold_or_by_other_keys_are_refused(tmp_path):
    gov = world.Governance(count=2, threshold=2)
    pol = _policy_with_pack(tmp_path, gov, signers=gov.keys[:1])
    with pytest.raises(CalendarError, match=r"1 valid governance signature\(s\), need 2: .*`prodgate calendar sign`"):
        calendar_pack.calendar_for_policy(pol.raw, pol.path)
    stranger = dsse.generate_private_key()
    pol = _policy_with_pack(tmp_path, gov, signers=[gov.keys[0], stranger])
    with pytest.raises(CalendarError, match=r"1 valid governance signature\(s\), need 2"):
        calendar_pack.calendar_for_policy(pol.raw, pol.path)


def test_the_pinned_root_verifies_the_pack(tmp_path):
    gov = world.Governance(count=1, threshold=1)
    pol = _policy_with_pack(tmp_path, gov)
    other_root = world.Governance(count=1, threshold=1).write_root(str(tmp_path / "other-root.yml"))
    with pytest.raises(CalendarError, match="0 valid governance signature"):
        calendar_pack.calendar_for_policy(pol.raw, pol.path, other_root)
    assert calendar_pack.calendar_for_policy(pol.raw, pol.path, gov.write_root(str(tmp_path / "root.yml"))).origin(2027) == "pack"


def test_a_policy_signature_cannot_be_replayed_as_a_pack_signature(tmp_path):
    gov = world.Governance(count=1, threshold=1)
    doc = copy.deepcopy(world.YEAR_2027)
    # Sign the pack's body as if it were a policy (same canonical JSON, the policy's payload type).
    doc.pop("signatures", None)
    policy.sign_document(doc, gov.keys[0])
    with pytest.raises(CalendarError, match="0 valid governance signature"):
        calendar_pack.verify_pack(doc, gov.section(), "replayed.yml")


def test_no_rollback_behind_the_collections_own_data(tmp_path):
    gov = world.Governance(count=1, threshold=1)
    with open(os.path.join(calendar_pack.DATA_DIR, "2026.yml"), encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=policy_schema.Loader)  # nosec B506 - a SafeLoader keeping dates as written
    shipped = data["version"]
    data.update(schema=calendar_pack.PACK_SCHEMA)
    pol = _policy_with_pack(tmp_path, gov, data=data)
    with pytest.raises(CalendarError, match=rf"version {shipped} for 2026 is not above the collection's own data \(version {shipped}\)"):
        calendar_pack.calendar_for_policy(pol.raw, pol.path)
    pol = _policy_with_pack(tmp_path, gov, data=data, version=shipped + 1)
    assert calendar_pack.calendar_for_policy(pol.raw, pol.path).origin(2026) == "pack"


def test_the_policy_reference_pins_the_version(tmp_path):
    gov = world.Governance(count=1, threshold=1)
    digest = world.write_pack(str(tmp_path / "calendar-2027.yml"), gov, version=2)
    doc = policy.read_policy_document(world.write_policy(str(tmp_path / "policy.yml"), gov, [("calendar-2027.yml", digest)]))
    doc["calendar"]["packs"][0]["version"] = 1
    with pytest.raises(CalendarError, match="is version 2, the policy names version 1"):
        calendar_pack.calendar_for_policy(doc, str(tmp_path / "policy.yml"))


def test_two_packs_for_one_year_are_refused(tmp_path):
    gov = world.Governance(count=1, threshold=1)
    first = world.write_pack(str(tmp_path / "a.yml"), gov)
    second = world.write_pack(str(tmp_path / "b.yml"), gov, version=2)
    path = world.write_policy(str(tmp_path / "policy.yml"), gov, [("a.yml", first), ("b.yml", second)])
    pol = policy.load_policy(path)
    with pytest.raises(CalendarError, match="names two packs for 2027"):
        calendar_pack.calendar_for_policy(pol.raw, pol.path)


@pytest.mark.parametrize("ref,fragment", [
    ({"file": "../calendar-2027.yml", "sha256": "a" * 64}, "must be a file name beside the policy"),
    ({"file": "https://example.invalid/c.yml", "sha256": "a" * 64}, "must be a file name beside the policy"),
    ({"file": "c.yml", "sha256": "abc"}, "sha256: must be the pack file's sha256"),
    ({"file": "c.yml"}, "write {file: calendar-2027.yml"),
    ({"file": "c.yml", "sha256": "a" * 64, "version": 0}, "version: must be a whole number >= 1"),
])
def test_bad_pack_references_are_policy_errors(ref, fragment):
    with pytest.raises(PolicyError, match=r"policy.yml: calendar.packs\[0\]"):
        calendar_pack.pack_references({"packs": [ref]}, "policy.yml")
    with pytest.raises(PolicyError) as info:
        calendar_pack.pack_references({"packs": [ref]}, "policy.yml")
    assert fragment in str(info.value)


def test_policy_check_refuses_a_bad_pack_reference():
    problems = policy_schema.validate_document({"calendar": {"packs": [{"file": "../x.yml", "sha256": "a" * 64}]}})
    assert any("must be a file name beside the policy" in p for p in problems)


def test_a_provisional_or_uncited_draft_cannot_be_signed_or_used():
    draft = calendar_pack.draft(2027, "holidays", now=dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc))
    problems = calendar_pack.check_pack(draft, "draft.yml")
    assert any("provisional draft" in p for p in problems)
    assert any("REVIEW:" in p for p in problems)


# --- drafts from the installed libraries -----------------------------------------------------------
def test_a_draft_from_holidays_for_a_year_with_the_notice_matches_the_reviewed_data():
    # Where holidays has the State Council's arrangement (2024-2026) the draft reproduces our
    # reviewed files day by day: the drafting itself is right.
    for year in (2024, 2025, 2026):
        draft = calendar_pack.draft(year, "holidays")
        assert calendar_pack.diff(draft, "draft", "holidays")["differences"] == []
        ours = default_calendar().year(year).days
        theirs = calendar_pack.expand(draft, "draft")
        assert {d: (i.working_day, dict(i.trading)) for d, i in ours.items()} == theirs, year


def test_a_draft_says_its_source_version_and_that_it_is_provisional():
    draft = calendar_pack.draft(2027, "holidays", now=dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc))
    assert draft["provisional"] is True and draft["year"] == 2027
    prov = draft["provenance"]
    assert prov["source"] == "holidays" and prov["library_version"] == calendar_pack._version_of("holidays")
    assert prov["drafted_at"] == "2026-11-29T00:00:00+00:00"
    # The installed holidays has no 2027 notice: the draft says so and has no make-up days.
    if (calendar_pack._holidays_official_until() or 0) < 2027:
        assert draft["makeup_working_days"] == []
        assert "estimates the festivals" in prov["notes"][0] and "make-up" in prov["notes"][0]
    text = calendar_pack.draft_text(draft)
    assert text.startswith("# DRAFT calendar pack for 2027, generated from holidays")
    assert yaml.safe_load(text)["provisional"] is True


@pytest.mark.parametrize("source", ["chinesecalendar", "exchange_calendars"])
def test_a_source_without_the_year_says_so(source):
    with pytest.raises(CalendarError, match=rf"{source} [0-9.]+ has no (XSHG )?data for 2099.*upgrade it, or draft from another source"):
        calendar_pack.draft(2099, source)


def test_diff_shows_the_days_a_draft_and_a_source_disagree_on():
    draft = calendar_pack.draft(2026, "holidays")
    draft["makeup_working_days"] = [m for m in draft["makeup_working_days"] if m["date"] != "2026-09-20"]
    result = calendar_pack.diff(draft, "draft", "chinesecalendar")
    assert result["differences"] == [{"date": "2026-09-20", "weekday": "Sun", "field": "working day", "draft": False, "source": True}]
    draft["exchange_closures"].append({"date": "2026-03-02", "name": "test closure"})
    rows = calendar_pack.diff(draft, "draft", "exchange_calendars")["differences"]
    assert rows == [{"date": "2026-03-02", "weekday": "Mon", "field": "XSHG trading", "draft": False, "source": True},
                    {"date": "2026-03-02", "weekday": "Mon", "field": "XSHE trading", "draft": False, "source": True}]


# --- how far the data reaches ----------------------------------------------------------------------
def test_coverage_and_warning_of_the_shipped_data():
    rows = calendar_pack.coverage(default_calendar(), D(2026, 11, 29))
    assert [(r["calendar"], r["last_date"], r["days_left"], r["last_year_from"]) for r in rows] == [
        ("CN working days", "2026-12-31", 32, "collection"), ("XSHG trading days", "2026-12-31", 32, "collection"),
        ("XSHE trading days", "2026-12-31", 32, "collection")]
    assert calendar_pack.coverage_warning(default_calendar(), D(2026, 11, 1)).startswith("calendar data ends 2026-12-31 (60 day(s)")
    assert calendar_pack.coverage_warning(default_calendar(), D(2026, 11, 1), 60) is not None
    assert calendar_pack.coverage_warning(default_calendar(), D(2026, 10, 31), 60) is None       # 61 days left
    assert calendar_pack.coverage_warning(default_calendar(), D(2026, 11, 29), 0) is None        # switched off


def test_coverage_with_a_pack(signed):
    _gov, pol, root = signed
    cal = calendar_pack.calendar_for_policy(pol.raw, pol.path, root)
    rows = calendar_pack.coverage(cal, D(2026, 11, 29))
    assert rows[0]["last_date"] == "2027-12-31" and rows[0]["days_left"] == 397 and rows[0]["last_year_from"] == "pack"
    assert calendar_pack.coverage_warning(cal, D(2026, 11, 29)) is None


def test_policy_warning_for_results_that_do_not_read_the_calendar(signed, tmp_path):
    _gov, pol, root = signed
    late_nov = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
    assert calendar_pack.policy_warning(pol.raw, pol.path, late_nov, root) is None                 # the 2027 pack counts
    assert calendar_pack.policy_warning(pol.raw, pol.path, late_nov.replace(year=2027), root).startswith(
        "calendar data ends 2027-12-31 (32 day(s) after 2027-11-29")
    assert calendar_pack.policy_warning({}, "policy.yml", late_nov).startswith("calendar data ends 2026-12-31 (32 day(s)")
    os.remove(tmp_path / "calendar-2027.yml")
    assert calendar_pack.policy_warning(pol.raw, pol.path, late_nov, root).startswith(
        "the calendar packs of the policy cannot be used, so change_window will refuse: calendar pack")
