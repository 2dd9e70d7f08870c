"""China working-day and exchange (XSHG, XSHE) calendar from the collection's reviewed data.

Art. 17 counts the plan's lead time in working days, and Chinese working days include make-up
weekend days (调休) that the State Council announces each year; Art. 28 and the trading-session
freeze need the exchanges' trading days, which differ from working days in both directions
(make-up weekends are working days without trading; 2024-02-09 was a working day with the
exchanges closed). Neither rule can be derived, so each year is a reviewed data file in
``calendar_data/<year>.yml`` or a signed calendar pack the policy references
(``calendar_pack.py``), and a year without data fails closed (never a guess).

It is ``schedule.calendar``, inside its package: it would shadow the standard library's ``calendar``
(``_strptime`` imports it) only if the schedule/ folder itself were put on ``sys.path``, which nothing does.
Only the standard library and PyYAML are used at run time.
"""
import datetime as _dt
import os
import threading

import yaml

from ..errors import CalendarError

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calendar_data")
EXCHANGES = ("XSHG", "XSHE")
DEFAULT_EXCHANGE = "XSHG"
_ONE_DAY = _dt.timedelta(days=1)


def _as_date(value, where):
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CalendarError(f"{where}: {value!r} is not a date: write it as YYYY-MM-DD")


class DayInfo:
    """What the calendar knows about one date."""

    __slots__ = ("date", "working_day", "trading", "holiday", "holiday_zh", "makeup_for", "closure")

    def __init__(self, date, working_day, trading, holiday=None, holiday_zh=None, makeup_for=None, closure=None):
        self.date = date
        self.working_day = working_day
        self.trading = trading          # {exchange: bool}
        self.holiday = holiday          # name of the holiday period the date is in
        self.holiday_zh = holiday_zh
        self.makeup_for = makeup_for    # the holiday a make-up working day compensates
        self.closure = closure          # name of an extra exchange closure on this date

    @property
    def trading_day(self):
        return self.trading[DEFAULT_EXCHANGE]

    def as_dict(self):
        return {
            "date": self.date.isoformat(),
            "weekday": self.date.strftime("%a"),
            "working_day": self.working_day,
            "trading_day": self.trading_day,
            "trading": dict(self.trading),
            "holiday": self.holiday,
            "holiday_zh": self.holiday_zh,
            "makeup_day": self.makeup_for is not None,
            "makeup_for": self.makeup_for,
            "exchange_closure": self.closure,
        }


class YearData:
    """One year's validated data, expanded to a DayInfo per date."""

    def __init__(self, year, raw, path):
        self.year = year
        self.path = path
        self.sources = raw["sources"]
        # A year drafted from a library before the official notice was checked says so.
        self.provisional = bool(raw.get("provisional", False))
        self.provenance = raw.get("provenance")
        self.days = {}
        holidays, makeups, closures = {}, {}, {}
        for i, period in enumerate(raw["holidays"]):
            where = f"{path}: holidays[{i}]"
            if not isinstance(period, dict) or not period.get("name"):
                raise CalendarError(f"{where}: needs name, from and to: e.g. {{name: National Day, from: {year}-10-01, to: {year}-10-07}}")
            first = _as_date(period.get("from"), where + ".from")
            last = _as_date(period.get("to", period.get("from")), where + ".to")
            if last < first or first.year != year or last.year != year:
                raise CalendarError(f"{where}: {first}..{last} must be an ordered range inside {year}: fix the dates")
            day = first
            while day <= last:
                if day in holidays:
                    raise CalendarError(f"{where}: {day} is already in holiday {holidays[day][0]!r}: holiday periods must not overlap")
                holidays[day] = (period["name"], period.get("name_zh"))
                day += _ONE_DAY
        for i, item in enumerate(raw["makeup_working_days"]):
            where = f"{path}: makeup_working_days[{i}]"
            if not isinstance(item, dict):
                raise CalendarError(f"{where}: write {{date: YYYY-MM-DD, for: <holiday name>}}")
            day = _as_date(item.get("date"), where + ".date")
            if day.year != year or day.weekday() < 5:
                raise CalendarError(f"{where}: {day} must be a Saturday or Sunday in {year}: a make-up working day replaces a weekend day")
            if day in holidays:
                raise CalendarError(f"{where}: {day} is inside holiday {holidays[day][0]!r}: fix one of the two")
            makeups[day] = item.get("for") or "unspecified holiday"
        for i, item in enumerate(raw["exchange_closures"]):
            where = f"{path}: exchange_closures[{i}]"
            if not isinstance(item, dict):
                raise CalendarError(f"{where}: write {{date: YYYY-MM-DD, name: ..., exchanges: [XSHG, XSHE]}}")
            day = _as_date(item.get("date"), where + ".date")
            exchanges = item.get("exchanges", list(EXCHANGES))
            unknown = [e for e in exchanges if e not in EXCHANGES]
            if day.year != year or unknown:
                raise CalendarError(f"{where}: needs a date in {year} and exchanges among {list(EXCHANGES)} (got {unknown or day})")
            closures[day] = (item.get("name") or "exchange closure", frozenset(exchanges))
        day = _dt.date(year, 1, 1)
        while day.year == year:
            name, name_zh = holidays.get(day, (None, None))
            makeup_for = makeups.get(day)
            weekday = day.weekday() < 5
            working = makeup_for is not None or (weekday and name is None)
            closure = closures.get(day)
            # Exchanges trade Monday-Friday only: a make-up Saturday or Sunday is a working day
            # without trading (exchange notices: "周末休市").
            trading = {ex: working and weekday and not (closure and ex in closure[1]) for ex in EXCHANGES}
            self.days[day] = DayInfo(day, working, trading, name, name_zh, makeup_for, closure[0] if closure else None)
            day += _ONE_DAY


DRAFT_COMMAND = "prodgate calendar draft"


def missing_year_message(year, last_covered=None):
    """The fail-closed message for a year without data: it names the way to add the year."""
    ends = f" (the data ends {last_covered})" if last_covered else ""
    return (f"calendar has no data for {year}{ends}: draft it with `{DRAFT_COMMAND} --year {year} --source holidays`, "
            f"compare it with the State Council notice on {year}'s public holidays and the exchanges' closure notices, "
            f"sign it with `prodgate calendar sign` and reference the pack in the policy's calendar.packs "
            f"(see docs/freeze-windows.md)")


def validate_year(raw, year, path):
    """One year's data (a collection file or a calendar pack's body) -> YearData, or CalendarError."""
    if not isinstance(raw, dict):
        raise CalendarError(f"{path}: must be a mapping with year, sources, holidays, makeup_working_days, exchange_closures")
    if raw.get("year") != year:
        raise CalendarError(f"{path}: says year {raw.get('year')!r}, expected {year}: the file name and `year` must agree")
    missing = [k for k in ("sources", "holidays", "makeup_working_days", "exchange_closures") if k not in raw]
    if missing:
        raise CalendarError(f"{path}: missing {', '.join(missing)}: every year lists its sources, holidays, make-up days and closures")
    src = raw["sources"]
    if not isinstance(src, dict) or not isinstance(src.get("working_days"), dict) or not src["working_days"].get("url"):
        raise CalendarError(f"{path}: sources.working_days.url is missing: cite the State Council notice the data comes from")
    for key in ("holidays", "makeup_working_days", "exchange_closures"):
        if not isinstance(raw[key], list):
            raise CalendarError(f"{path}: {key} must be a list (use [] for none)")
    return YearData(year, raw, path)


class WorkCalendar:
    """Working days and trading days for the years that have data; other years raise CalendarError."""

    def __init__(self, data_dir=None, packs=None):
        self.data_dir = data_dir or DATA_DIR
        # {year: (raw year data, where it came from)}: verified calendar packs, which take the
        # place of the collection's file for their year (calendar_pack.py checks them first).
        self.packs = dict(packs or {})
        self._years = {}
        self._lock = threading.Lock()

    def _shipped_years(self):
        try:
            names = os.listdir(self.data_dir)
        except OSError:
            return []
        return sorted(int(n[:-4]) for n in names if n.endswith(".yml") and n[:-4].isdigit())

    def available_years(self):
        return sorted(set(self._shipped_years()) | set(self.packs))

    def year(self, year):
        data = self._years.get(year)
        if data is None:
            with self._lock:
                data = self._years.get(year)
                if data is None:
                    data = self._years[year] = self._load(year)
        return data

    def _load(self, year):
        if year in self.packs:
            raw, origin = self.packs[year]
            return validate_year(raw, year, origin)
        path = os.path.join(self.data_dir, f"{year}.yml")
        if not os.path.isfile(path):
            raise CalendarError(missing_year_message(year, self.last_covered_date()))
        try:
            with open(path, encoding="utf-8") as handle:
                raw = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            # PyYAML raises ValueError for a well-formed but impossible date such as 2031-13-01.
            raise CalendarError(f"{path}: cannot be read as YAML ({exc}): fix the file (dates are YYYY-MM-DD)") from None
        return validate_year(raw, year, path)

    def origin(self, year):
        """Where ``year``'s data comes from: ``pack`` (a signed calendar pack) or ``collection``."""
        if year in self.packs:
            return "pack"
        return "collection" if year in self._shipped_years() else None

    def last_covered_date(self, since=None):
        """The last date of the unbroken run of years with data that contains ``since`` (default:
        the run that starts at the first year with data); None when ``since``'s year has none."""
        years = set(self.available_years())
        if not years:
            return None
        year = since.year if since is not None else min(years)
        if year not in years:
            return None
        while year + 1 in years:
            year += 1
        return _dt.date(year, 12, 31)

    # --- per-day questions -------------------------------------------------------------
    def day(self, date):
        return self.year(date.year).days[date]

    def is_working_day(self, date):
        return self.day(date).working_day

    def is_trading_day(self, date, exchange=DEFAULT_EXCHANGE):
        if exchange not in EXCHANGES:
            raise CalendarError(f"unknown exchange {exchange!r}: use one of {list(EXCHANGES)}")
        return self.day(date).trading[exchange]

    def holiday_name(self, date):
        return self.day(date).holiday

    def days(self, first, last):
        """DayInfo for every date from ``first`` to ``last`` inclusive."""
        out = []
        day = first
        while day <= last:
            out.append(self.day(day))
            day += _ONE_DAY
        return out

    # --- arithmetic --------------------------------------------------------------------
    def add_working_days(self, date, count):
        """The ``count``-th working day after ``date`` (before it when negative); ``date`` itself
        is not counted. ``add_working_days(2025-10-09, -3) == 2025-09-28`` (a make-up Sunday)."""
        if count == 0:
            return date
        step = _ONE_DAY if count > 0 else -_ONE_DAY
        remaining = abs(count)
        day = date
        while remaining:
            day += step
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_between(self, first, last):
        """Working days after ``first`` up to and including ``last`` (0 when last <= first)."""
        count = 0
        day = first + _ONE_DAY
        while day <= last:
            if self.is_working_day(day):
                count += 1
            day += _ONE_DAY
        return count

    def next_day(self, date, predicate, limit=400):
        """First date after ``date`` for which ``predicate(DayInfo)`` is true."""
        day = date
        for _attempt in range(limit):
            day += _ONE_DAY
            if predicate(self.day(day)):
                return day
        raise CalendarError(f"no matching day within {limit} days after {date}")

    def previous_day(self, date, predicate, limit=400):
        day = date
        for _attempt in range(limit):
            day -= _ONE_DAY
            if predicate(self.day(day)):
                return day
        raise CalendarError(f"no matching day within {limit} days before {date}")

    def sources(self, year):
        return self.year(year).sources


_DEFAULT = None


def default_calendar():
    """The calendar over the shipped data, shared (it is read-only once loaded)."""
    global _DEFAULT  # pylint: disable=global-statement
    if _DEFAULT is None:
        _DEFAULT = WorkCalendar()
    return _DEFAULT
