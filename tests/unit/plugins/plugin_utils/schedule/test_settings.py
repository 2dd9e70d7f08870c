"""schedule/settings.py: the policy's ``calendar`` section. What is not written takes the policy's
defaults (Asia/Shanghai, the SSE sessions, Art. 17's three working days); what is written wrongly
is refused naming the policy file, the key and what is allowed."""
import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import PolicyError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.settings import (
    parse_calendar_settings, parse_sessions, parse_year_end, pack_references)

SRC = "/etc/prodgate/policy.yml"
DIGEST = "ab" * 32


def refused(raw, lead_time=None):
    with pytest.raises(PolicyError) as exc:
        parse_calendar_settings(raw, SRC, lead_time)
    return str(exc.value)


# ---- defaults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [None, {}])
def test_defaults(raw):
    settings = parse_calendar_settings(raw, SRC)
    assert settings.timezone_name == "Asia/Shanghai"
    assert str(settings.tz) == "Asia/Shanghai"
    assert settings.sessions == ((9 * 60 + 15, 11 * 60 + 30), (13 * 60, 15 * 60))
    assert settings.exchange == "XSHG"
    assert settings.year_end == (("anchor", "last_trading_day", 15 * 60), ("anchor", "first_trading_day", 9 * 60 + 15))
    assert settings.lead_time == 3
    assert settings.allow_test_clock is False
    assert settings.data_warning_days == 60


def test_given_values_are_used():
    settings = parse_calendar_settings({"timezone": " Europe/London ", "trading_sessions": ["13:00-15:00", "9:30-11:30"],
                                        "exchange": "XSHE", "data_warning_days": 0, "allow_test_clock": True,
                                        "year_end_close": {"start": "12-31 15:00", "end": "first_working_day 09:00"}},
                                       SRC, lead_time=0)
    assert settings.timezone_name == "Europe/London"
    assert settings.sessions == ((570, 690), (780, 900))      # sorted
    assert settings.exchange == "XSHE"
    assert settings.year_end == (("date", (12, 31), 900), ("anchor", "first_working_day", 540))
    assert settings.lead_time == 0 and settings.allow_test_clock is True and settings.data_warning_days == 0


# ---- refusals -----------------------------------------------------------------------------------

def test_unknown_keys_are_refused_naming_the_allowed_keys():
    message = refused({"timezone": "Asia/Shanghai", "holidays": [], "lead_time": 2})
    assert message == (f"{SRC}: calendar: unknown key(s) ['holidays', 'lead_time']: allowed are timezone, trading_sessions, "
                       "exchange, year_end_close, allow_test_clock, packs, data_warning_days")


@pytest.mark.parametrize("raw", [["timezone"], "Asia/Shanghai", 3])
def test_the_section_is_a_mapping(raw):
    assert refused(raw).startswith(f"{SRC}: calendar: must be a mapping")


@pytest.mark.parametrize("raw, message", [
    ({"timezone": "localtime"}, f"{SRC}: calendar.timezone: 'localtime' is not a place's time zone"),
    ({"timezone": "Asia/Atlantis"}, f"{SRC}: calendar.timezone: unknown time zone 'Asia/Atlantis'"),
    ({"exchange": "XNYS"}, f"{SRC}: calendar.exchange: 'XNYS' is not supported: use one of ['XSHG', 'XSHE']"),
    ({"allow_test_clock": "yes"}, f"{SRC}: calendar.allow_test_clock: must be true or false"),
    ({"data_warning_days": -1}, f"{SRC}: calendar.data_warning_days: a whole number of days >= 0"),
    ({"data_warning_days": True}, f"{SRC}: calendar.data_warning_days: a whole number of days >= 0"),
    ({"data_warning_days": "60"}, f"{SRC}: calendar.data_warning_days: a whole number of days >= 0"),
    ({"trading_sessions": []}, f"{SRC}: calendar.trading_sessions: sessions must be a non-empty list"),
    ({"trading_sessions": ["09:15-11:30", "11:00-15:00"]}, f"{SRC}: calendar.trading_sessions: sessions overlap"),
    ({"trading_sessions": ["15:00-13:00"]}, "calendar.trading_sessions[0]: '15:00-13:00' ends before it starts"),
    ({"trading_sessions": ["09:15"]}, "calendar.trading_sessions[0]: '09:15' must be 'HH:MM-HH:MM'"),
    ({"trading_sessions": ["09:15-24:01"]}, "calendar.trading_sessions[0]: '24:01' is not a time of day"),
    ({"year_end_close": {"start": "first_trading_day 09:15", "end": "first_trading_day 09:15"}},
     "calendar.year_end_close.start: first_trading_day belongs to the other end of the span"),
    ({"year_end_close": {"start": "02-30 15:00", "end": "first_trading_day 09:15"}},
     "calendar.year_end_close.start: '02-30' is neither MM-DD nor one of"),
    ({"year_end_close": {"start": "12-31 15:00"}}, "calendar.year_end_close: needs start and end"),
])
def test_bad_values_name_the_key(raw, message):
    assert message in refused(raw)


@pytest.mark.parametrize("lead_time", [-1, True, "3", 2.5])
def test_lead_time_is_a_whole_number_of_working_days(lead_time):
    assert refused({}, lead_time) == (f"{SRC}: lead_time_working_days must be a whole number of working days >= 0 "
                                      "(Art. 17: 3)")


def test_sessions_may_end_at_midnight():
    assert parse_sessions(["22:00-24:00"], "s") == ((1320, 1440),)


def test_year_end_anchors_must_be_on_their_side():
    assert parse_year_end({"start": "last_working_day 17:00", "end": "01-02 09:00"}, "y") == (
        ("anchor", "last_working_day", 1020), ("date", (1, 2), 540))


# ---- calendar.packs -------------------------------------------------------------------------------

def test_pack_references_are_returned_normalised():
    raw = {"packs": [{"file": "calendar-2027.yml", "sha256": DIGEST.upper(), "version": 2},
                     {"file": "calendar-2028.yml", "sha256": "cd" * 32}]}
    assert pack_references(raw, SRC) == [("calendar-2027.yml", DIGEST, 2), ("calendar-2028.yml", "cd" * 32, None)]
    assert parse_calendar_settings(raw, SRC).timezone_name == "Asia/Shanghai"


@pytest.mark.parametrize("section", [None, {}, {"timezone": "Asia/Shanghai"}, "not a mapping"])
def test_no_packs(section):
    assert pack_references(section, SRC) == []


@pytest.mark.parametrize("packs, message", [
    ("calendar-2027.yml", "calendar.packs: must be a list of {file: calendar-2027.yml, sha256: <hex>}"),
    ([{"file": "calendar-2027.yml"}], "calendar.packs[0]: write {file: calendar-2027.yml, sha256: <64 hex>, version: 1}"),
    ([{"file": "calendar-2027.yml", "sha256": DIGEST, "url": "https://x"}], "calendar.packs[0]: write {file:"),
    (["calendar-2027.yml"], "calendar.packs[0]: write {file:"),
    ([{"file": "../calendar-2027.yml", "sha256": DIGEST}],
     "calendar.packs[0].file: '../calendar-2027.yml' must be a file name beside the policy (no directory, no URL)"),
    ([{"file": "/etc/calendar-2027.yml", "sha256": DIGEST}], "calendar.packs[0].file: '/etc/calendar-2027.yml' must be"),
    ([{"file": "https://example.com/calendar-2027.yml", "sha256": DIGEST}],
     "calendar.packs[0].file: 'https://example.com/calendar-2027.yml' must be a file name beside the policy"),
    ([{"file": "..", "sha256": DIGEST}], "calendar.packs[0].file: '..' must be a file name beside the policy"),
    ([{"file": "a.yml", "sha256": "ab" * 31}], "calendar.packs[0].sha256: must be the pack file's sha256 in 64 hex digits"),
    ([{"file": "a.yml", "sha256": "zz" * 32}], "calendar.packs[0].sha256: must be the pack file's sha256"),
    ([{"file": "a.yml", "sha256": DIGEST, "version": 0}], "calendar.packs[0].version: must be a whole number >= 1"),
    ([{"file": "a.yml", "sha256": DIGEST, "version": True}], "calendar.packs[0].version: must be a whole number >= 1"),
    ([{"file": "a.yml", "sha256": DIGEST, "version": "2"}], "calendar.packs[0].version: must be a whole number >= 1"),
    ([{"file": "a.yml", "sha256": DIGEST}, {"file": "a.yml", "sha256": "cd" * 32}],
     "calendar.packs[1].file: 'a.yml' is named twice"),
])
def test_bad_pack_references_are_refused_naming_the_entry(packs, message):
    with pytest.raises(PolicyError) as exc:
        pack_references({"packs": packs}, SRC)
    assert str(exc.value).startswith(f"{SRC}: ")
    assert message in str(exc.value)
    # parse_calendar_settings validates the references too: a policy with a bad one is refused
    assert message in refused({"packs": packs})
