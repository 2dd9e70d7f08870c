"""Every day of every shipped year, against three independent libraries (test dependencies only).

Compared, and required to agree:
* working day: ``chinese_calendar.is_workday`` and ``holidays.China().is_working_day``
  (both model the State Council's make-up working days);
* trading day on the Shanghai exchange: ``exchange_calendars`` XSHG sessions and
  ``holidays.financial_holidays("XSHG")``; on the Shenzhen exchange: ``holidays`` XSHE
  (exchange_calendars has no XSHE calendar);
* holiday names, on the weekdays that fall inside a holiday period, against
  ``chinese_calendar.get_holiday_detail``; the make-up day's holiday likewise.

Intended differences, each handled explicitly below:
1. Holiday periods: our data lists the notice's whole period (e.g. 2025-10-01..08, weekend days
   included); chinese_calendar reports weekend days inside it as ordinary weekend days with no
   name, so names are compared on weekdays only.
2. 2025-10-01..08 is one joint period "National Day and Mid-autumn Festival" in the notice;
   chinese_calendar names each day after one festival (6 October "Mid-autumn Festival"), so a
   name matches when it is part of ours.
3. chinese_calendar spells "Tomb-sweeping Day", "Labour Day"; the holidays library uses other
   spellings and "Day off (substituted ...)" labels, so its names are not compared at all.
4. Years outside a library's data: chinesecalendar raises and exchange_calendars refuses, so a
   new data year fails this test until the libraries are upgraded or the year is reviewed by
   hand (and this test then says which library and why). The holidays library silently guesses
   for years without a notice, which is why it is never the only oracle.
"""
import datetime as dt
import warnings

import chinese_calendar
import exchange_calendars
import holidays
import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.calendar import default_calendar

CAL = default_calendar()
YEARS = CAL.available_years()
with warnings.catch_warnings():
    # A pandas 3 deprecation raised inside exchange_calendars, not ours.
    warnings.simplefilter("ignore", DeprecationWarning)
    XSHG = exchange_calendars.get_calendar("XSHG", start=f"{min(YEARS) - 1}-12-01")


def _days(year):
    day = dt.date(year, 1, 1)
    while day.year == year:
        yield day
        day += dt.timedelta(days=1)


@pytest.mark.parametrize("year", YEARS)
def test_working_days_agree_with_chinese_calendar_and_holidays(year):
    cn = holidays.China(years=year)
    wrong = []
    for day in _days(year):
        ours = CAL.is_working_day(day)
        if ours != chinese_calendar.is_workday(day):
            wrong.append((day, "chinese_calendar", ours))
        if ours != cn.is_working_day(day):
            wrong.append((day, "holidays.China", ours))
    assert not wrong


@pytest.mark.parametrize("year", YEARS)
def test_trading_days_agree_with_exchange_calendars_and_holidays(year):
    sessions = {s.date() for s in XSHG.sessions_in_range(f"{year}-01-01", f"{year}-12-31")}
    closed = {ex: holidays.financial_holidays(ex, years=year) for ex in ("XSHG", "XSHE")}
    wrong = []
    for day in _days(year):
        if CAL.is_trading_day(day, "XSHG") != (day in sessions):
            wrong.append((day, "exchange_calendars XSHG"))
        for ex in ("XSHG", "XSHE"):
            lib = day.weekday() < 5 and day not in closed[ex]
            if CAL.is_trading_day(day, ex) != lib:
                wrong.append((day, f"holidays {ex}"))
    assert not wrong


@pytest.mark.parametrize("year", YEARS)
def test_holiday_and_makeup_names_agree_with_chinese_calendar(year):
    wrong = []
    for day in _days(year):
        info = CAL.day(day)
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        if info.holiday and day.weekday() < 5:          # difference 1: weekdays only
            if not on_holiday or name is None or name not in info.holiday:   # difference 2: part of a joint name
                wrong.append((day, info.holiday, name))
        if info.makeup_for and name not in info.makeup_for:
            wrong.append((day, info.makeup_for, name))
    assert not wrong


def test_known_differences_between_working_and_trading_days():
    # Both directions occur, in the data and in every oracle.
    assert CAL.is_working_day(dt.date(2025, 9, 28)) and chinese_calendar.is_workday(dt.date(2025, 9, 28))
    assert not XSHG.is_session("2025-09-28") and not CAL.is_trading_day(dt.date(2025, 9, 28))
    assert CAL.is_working_day(dt.date(2024, 2, 9)) and chinese_calendar.is_workday(dt.date(2024, 2, 9))
    assert not XSHG.is_session("2024-02-09") and not CAL.is_trading_day(dt.date(2024, 2, 9))
    assert chinese_calendar.find_workday(-3, dt.date(2025, 10, 9)) == CAL.add_working_days(dt.date(2025, 10, 9), -3)
