"""The shipped China working-day / exchange calendar: known facts, arithmetic, fail-closed years."""
import datetime as dt
import os

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import CalendarError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.calendar import DATA_DIR, WorkCalendar, default_calendar

D = dt.date
CAL = default_calendar()


def test_2025_09_28_is_a_working_day_without_trading():
    info = CAL.day(D(2025, 9, 28))
    assert D(2025, 9, 28).weekday() == 6  # a Sunday
    assert info.working_day and info.makeup_for
    assert not CAL.is_trading_day(D(2025, 9, 28), "XSHG") and not CAL.is_trading_day(D(2025, 9, 28), "XSHE")


def test_2024_02_09_is_an_official_working_day_with_the_exchanges_closed():
    assert CAL.is_working_day(D(2024, 2, 9))
    assert CAL.holiday_name(D(2024, 2, 9)) is None
    assert not CAL.is_trading_day(D(2024, 2, 9), "XSHG") and not CAL.is_trading_day(D(2024, 2, 9), "XSHE")
    assert CAL.day(D(2024, 2, 9)).closure == "Spring Festival Eve"


def test_three_working_days_before_2025_10_09_is_2025_09_28():
    assert CAL.add_working_days(D(2025, 10, 9), -3) == D(2025, 9, 28)
    assert CAL.working_days_between(D(2025, 9, 28), D(2025, 10, 9)) == 3


@pytest.mark.parametrize("start,count,expected", [
    (D(2025, 9, 26), 1, D(2025, 9, 28)),     # Friday -> make-up Sunday
    (D(2025, 9, 30), 1, D(2025, 10, 9)),     # across the 8-day holiday
    (D(2025, 10, 9), 0, D(2025, 10, 9)),
    (D(2025, 12, 31), 1, D(2026, 1, 4)),     # across the new year: 1-3 Jan holiday, 4 Jan make-up Sunday
    (D(2026, 1, 4), -1, D(2025, 12, 31)),
    (D(2024, 12, 31), 2, D(2025, 1, 3)),
])
def test_add_working_days(start, count, expected):
    assert CAL.add_working_days(start, count) == expected
    if count:
        assert CAL.add_working_days(expected, -count) == start or not CAL.is_working_day(start)


def test_year_without_data_fails_closed_with_the_fix():
    with pytest.raises(CalendarError, match=r"calendar has no data for 2027 \(the data ends 2026-12-31\): draft it with `prodgate calendar draft --year 2027"):
        CAL.is_working_day(D(2027, 1, 4))
    with pytest.raises(CalendarError, match="2023"):
        CAL.add_working_days(D(2024, 1, 2), -2)


def test_every_shipped_year_names_its_sources():
    years = CAL.available_years()
    assert {2024, 2025, 2026} <= set(years)
    for year in years:
        sources = CAL.sources(year)
        assert sources["working_days"]["url"].startswith("https://www.gov.cn/")
        assert "国务院办公厅" in sources["working_days"]["title"]
        assert set(sources["exchanges"]) == {"XSHG", "XSHE"}


def _write(tmp_path, year, body):
    (tmp_path / f"{year}.yml").write_text(body, encoding="utf-8")
    return WorkCalendar(str(tmp_path))


GOOD_SOURCES = "sources: {working_days: {title: t, url: https://www.gov.cn/x}, exchanges: {}}\n"


@pytest.mark.parametrize("body,message", [
    ("year: 2030\n" + GOOD_SOURCES + "holidays: []\nmakeup_working_days: []\nexchange_closures: []\n", "expected 2031"),
    ("year: 2031\nholidays: []\nmakeup_working_days: []\nexchange_closures: []\n", "missing sources"),
    ("year: 2031\nsources: {}\nholidays: []\nmakeup_working_days: []\nexchange_closures: []\n", "cite the State Council notice"),
    ("year: 2031\n" + GOOD_SOURCES + "holidays: []\nmakeup_working_days: [{date: 2031-01-06}]\nexchange_closures: []\n",
     "must be a Saturday or Sunday"),
    ("year: 2031\n" + GOOD_SOURCES + "holidays: [{name: X, from: 2031-01-05, to: 2031-01-01}]\nmakeup_working_days: []\n"
     "exchange_closures: []\n", "ordered range"),
    ("year: 2031\n" + GOOD_SOURCES + "holidays: []\nmakeup_working_days: []\nexchange_closures: [{date: 2031-01-06, exchanges: [XHKG]}]\n",
     "exchanges among"),
    ("year: 2031\n" + GOOD_SOURCES + "holidays: [{name: X, from: 2031-13-01}]\nmakeup_working_days: []\nexchange_closures: []\n",
     "dates are YYYY-MM-DD"),
])
def test_invalid_data_files_are_refused_with_file_and_fix(tmp_path, body, message):
    cal = _write(tmp_path, 2031, body)
    with pytest.raises(CalendarError, match=message) as err:
        cal.is_working_day(D(2031, 1, 6))
    assert "2031.yml" in str(err.value)


def test_data_files_are_shipped_as_package_data():
    assert os.path.isfile(os.path.join(DATA_DIR, "2026.yml"))
