"""Freeze windows, the plan lead time and the emergency override: pure rules over plain data.

Policy sections read here (they pass through ``Policy.raw`` untouched):

* ``freeze_windows``: a list of ``deny`` / ``allow`` windows, each scheduled by ``cron`` +
  ``duration``, by absolute ``start`` + ``end``, or by a ``calendar`` predicate
  (``trading_session``, ``non_working_day``, ``year_end_close``), with a ``timezone`` and
  selectors (``systems``, ``categories``, ``environments``, ``change_types``, ``exclude``).
* ``calendar``: ``timezone`` (default Asia/Shanghai), ``trading_sessions`` (default
  09:15-11:30 and 13:00-15:00, the opening call auction included), ``exchange`` (XSHG),
  ``year_end_close`` span, ``allow_test_clock``, ``packs`` (signed calendar packs, see
  calendar_pack.py) and ``data_warning_days`` (warn when the calendar data ends within that many
  days of the change; default 60).
* ``lead_time_working_days``: Art. 17's three working days (default 3).

Semantics (Argo CD's sync windows, tightened; see docs/freeze-windows.md): every window is the
half-open interval [start, end); deny wins; if any allow window applies to a target, the change
must fall inside one of them; no applicable window means open. Everything is evaluated at the
instant the task runs. Anything unparsable, an unknown time zone or a year without calendar data
fails closed with an error naming the file, the path and the fix.
"""
import bisect
import datetime as _dt
import fnmatch
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ApprovalError, CalendarError, PolicyError
from .workcalendar import DEFAULT_EXCHANGE, EXCHANGES, default_calendar

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_SESSIONS = ("09:15-11:30", "13:00-15:00")
DEFAULT_YEAR_END = {"start": "last_trading_day 15:00", "end": "first_trading_day 09:15"}
DEFAULT_LEAD_TIME = 3
DEFAULT_DATA_WARNING_DAYS = 60
CHANGE_TYPES = ("initial_go_live", "version_update", "routine", "non_routine", "maintenance", "environment")
CALENDAR_PREDICATES = ("trading_session", "non_working_day", "year_end_close")
SELECTOR_KEYS = ("systems", "categories", "environments", "change_types")
_TARGET_FIELD = {"systems": "system", "categories": "category", "environments": "environment", "change_types": "change_type"}
_WINDOW_KEYS = frozenset(("name", "kind", "description", "reason", "timezone", "cron", "duration", "start", "end",
                          "calendar", "sessions", "exchange", "span", "exclude") + SELECTOR_KEYS)
_INF = float("inf")
_UTC = _dt.timezone.utc
_LOOKAHEAD_DAYS = 400


# --- small parsers ---------------------------------------------------------------------------
# Names the tz database ships that are not places: ``localtime`` is whatever the controller's
# zone is, ``Factory`` is "-00", ``posixrules`` is a template; ``posix/`` and ``right/`` are copies
# of the database (``right/`` counts leap seconds, which Python's clock does not).
_NOT_PLACES = ("localtime", "factory", "posixrules")
_NOT_PLACE_PREFIXES = ("posix/", "right/")


def parse_timezone(name, where):
    """ZoneInfo for ``name``; an unknown zone is an error, never a silent UTC (Argo CD's pitfall)."""
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{where}: time zone must be an IANA name such as Asia/Shanghai")
    clean = name.strip()
    if clean.lower() in _NOT_PLACES or clean.lower().startswith(_NOT_PLACE_PREFIXES):
        raise PolicyError(f"{where}: {name!r} is not a place's time zone (it would mean the controller's zone, UTC or a "
                          "leap-second clock): use an IANA name such as Asia/Shanghai")
    try:
        return ZoneInfo(clean)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{where}: unknown time zone {name!r}: use an IANA name such as Asia/Shanghai") from None


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


# A longer duration is a typo, and past ~2.7 million years timedelta overflows (issue 11, Deliver 9).
MAX_DURATION_DAYS = 3660


def parse_duration(text, where):
    match = _DURATION.match(str(text).strip().replace(" ", "")) if text not in (None, "") else None
    if not match or not any(match.groups()):
        raise PolicyError(f"{where}: duration {text!r} is not valid: write e.g. 90m, 6h, 1h30m or 2d")
    if any(len(g or "") > 9 for g in match.groups()):
        raise PolicyError(f"{where}: duration {str(text)[:40]!r} is too large: at most {MAX_DURATION_DAYS} days")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    if days * 1440 + hours * 60 + minutes > MAX_DURATION_DAYS * 1440:
        raise PolicyError(f"{where}: duration {text!r} is too large: at most {MAX_DURATION_DAYS} days")
    value = _dt.timedelta(days=days, hours=hours, minutes=minutes)
    if value <= _dt.timedelta(0):
        raise PolicyError(f"{where}: duration must be positive")
    return value


def _parse_hhmm(text, where):
    match = re.match(r"^(\d{1,2}):(\d{2})$", str(text).strip())
    if not match or int(match.group(1)) > 24 or int(match.group(2)) > 59 or (int(match.group(1)) == 24 and int(match.group(2))):
        raise PolicyError(f"{where}: {text!r} is not a time of day: write HH:MM (24:00 allowed)")
    return int(match.group(1)) * 60 + int(match.group(2))


def parse_sessions(raw, where):
    """``["09:15-11:30", "13:00-15:00"]`` -> ((555, 690), (780, 900)) minutes after midnight."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise PolicyError(f"{where}: sessions must be a non-empty list like ['09:15-11:30', '13:00-15:00']")
    out = []
    for i, item in enumerate(raw):
        parts = str(item).split("-")
        if len(parts) != 2:
            raise PolicyError(f"{where}[{i}]: {item!r} must be 'HH:MM-HH:MM'")
        start, end = _parse_hhmm(parts[0], f"{where}[{i}]"), _parse_hhmm(parts[1], f"{where}[{i}]")
        if end <= start:
            raise PolicyError(f"{where}[{i}]: {item!r} ends before it starts: sessions stay within one day")
        out.append((start, end))
    out.sort()
    for first, second in zip(out, out[1:]):
        if second[0] < first[1]:
            raise PolicyError(f"{where}: sessions overlap: list each minute once")
    return tuple(out)


def _parse_instant(value, tz, where):
    """An absolute instant; a value without offset is read in the window's time zone."""
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, _dt.date):
        moment = _dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise PolicyError(f"{where}: {value!r} is not an ISO 8601 date-time: write e.g. 2025-09-30T15:00") from None
    else:
        raise PolicyError(f"{where}: needs an ISO 8601 date-time such as 2025-09-30T15:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        year = moment.astimezone(_UTC).year
    except (OverflowError, ValueError):
        year = 0
    if not 1970 <= year < 9000:  # arithmetic around it (days, sessions) would overflow datetime
        raise PolicyError(f"{where}: {value!r} is out of range: give a time between the years 1970 and 8999")
    return moment


def parse_instant(value, tz=None, where="time"):
    """Public form of the above for the CLI and the action plugin (default zone Asia/Shanghai)."""
    return _parse_instant(value, tz or ZoneInfo(DEFAULT_TIMEZONE), where)


# --- cron --------------------------------------------------------------------------------------
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DOWS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_CRON_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day-of-month", 1, 31, {}),
                ("month", 1, 12, _MONTHS), ("day-of-week", 0, 7, _DOWS))


class CronSpec:
    """A five-field cron expression (Vixie semantics: when both day fields are restricted, either matches)."""

    def __init__(self, expr, where):
        self.expr = expr
        parts = str(expr).split()
        if len(parts) != 5:
            raise PolicyError(f"{where}: {expr!r} needs 5 fields (minute hour day-of-month month day-of-week), e.g. '0 20 * * FRI'")
        sets = [self._field(text, name, lo, hi, names, where) for text, (name, lo, hi, names) in zip(parts, _CRON_FIELDS)]
        self.minutes, self.hours, self.doms, self.months, dows = sets
        self.dows = frozenset(d % 7 for d in dows)
        self.dom_any = parts[2].startswith("*")
        self.dow_any = parts[4].startswith("*")
        self.times = sorted(h * 60 + m for h in self.hours for m in self.minutes)

    @staticmethod
    def _field(text, name, lo, hi, names, where):
        values = set()
        for piece in text.lower().split(","):
            step = 1
            if "/" in piece:
                piece, step_text = piece.split("/", 1)
                if not step_text.isdigit() or int(step_text) == 0:
                    raise PolicyError(f"{where}: bad step in {name} field {text!r}")
                step = int(step_text)
            if piece == "*":
                first, last = lo, hi
            else:
                bounds = piece.split("-")
                if len(bounds) > 2:
                    raise PolicyError(f"{where}: bad range in {name} field {text!r}")
                nums = []
                for bound in bounds:
                    if bound.isdigit():
                        nums.append(int(bound))
                    elif bound in names:
                        nums.append(names[bound])
                    else:
                        raise PolicyError(f"{where}: {bound!r} is not valid in the {name} field of {text!r} (allowed {lo}-{hi})")
                first, last = nums[0], nums[-1]
                if len(nums) == 1 and step > 1:
                    last = hi
            if not lo <= first <= last <= hi:
                raise PolicyError(f"{where}: {name} field {text!r} is out of range {lo}-{hi}")
            values.update(range(first, last + 1, step))
        return frozenset(values)

    def matches_date(self, day):
        if day.month not in self.months:
            return False
        dom = day.day in self.doms
        dow = (day.weekday() + 1) % 7 in self.dows
        if self.dom_any or self.dow_any:
            return dom and dow
        return dom or dow


# --- selectors and targets --------------------------------------------------------------------
class Target:
    """What a change touches: the system (its category from the catalogue), environment, change type."""

    __slots__ = ("system", "category", "environment", "change_type")

    def __init__(self, system, category=None, environment=None, change_type=None):
        self.system, self.category, self.environment, self.change_type = system, category, environment, change_type

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}


class Selector:
    """AND of the keys given; each key is a list of glob patterns; an absent key matches everything."""

    def __init__(self, raw, where):
        self.rules = {}
        for key in SELECTOR_KEYS:
            if key not in raw:
                continue
            value = raw[key]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise PolicyError(f"{where}.{key}: must be a non-empty list of names (globs allowed), e.g. [ta-core]")
            if key == "change_types":
                unknown = [v for v in value if not any(fnmatch.fnmatchcase(t, v) for t in CHANGE_TYPES)]
                if unknown:
                    raise PolicyError(f"{where}.change_types: {unknown} match no change type of Art. 25: use {list(CHANGE_TYPES)}")
            self.rules[key] = tuple(value)

    def matches(self, target, window_name):
        for key, patterns in self.rules.items():
            value = getattr(target, _TARGET_FIELD[key])
            if value is None:
                raise PolicyError(
                    f"freeze window {window_name!r} selects by {key} but the change's {_TARGET_FIELD[key]} is unknown: "
                    f"declare the system in the policy catalogue or pass {_TARGET_FIELD[key]}")
            if not any(fnmatch.fnmatchcase(value, p) for p in patterns):
                return False
        return True


# --- settings (the policy's `calendar` section) --------------------------------------------------
class CalendarSettings:
    def __init__(self, timezone=DEFAULT_TIMEZONE, sessions=None, exchange=DEFAULT_EXCHANGE, year_end=None,
                 lead_time=DEFAULT_LEAD_TIME, allow_test_clock=False, data_warning_days=DEFAULT_DATA_WARNING_DAYS):
        self.timezone_name = timezone
        self.tz = ZoneInfo(timezone)
        self.sessions = sessions or parse_sessions(list(DEFAULT_SESSIONS), "calendar.trading_sessions")
        self.exchange = exchange
        self.year_end = year_end or _parse_year_end(DEFAULT_YEAR_END, "calendar.year_end_close")
        self.lead_time = lead_time
        self.allow_test_clock = allow_test_clock
        self.data_warning_days = data_warning_days


def parse_calendar_settings(raw, source, lead_time=None):
    """The ``calendar`` section (and ``lead_time_working_days``) of the policy in ``source``."""
    where = f"{source}: calendar"
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be a mapping (timezone, trading_sessions, exchange, year_end_close)")
    allowed = ("timezone", "trading_sessions", "exchange", "year_end_close", "allow_test_clock", "packs", "data_warning_days")
    unknown = set(raw) - set(allowed)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {sorted(unknown)}: allowed are {', '.join(allowed)}")
    from . import calendar_pack  # pylint: disable=import-outside-toplevel  # it imports policy, which imports us
    calendar_pack.pack_references(raw, source)
    warning_days = raw.get("data_warning_days", DEFAULT_DATA_WARNING_DAYS)
    if not isinstance(warning_days, int) or isinstance(warning_days, bool) or warning_days < 0:
        raise PolicyError(f"{where}.data_warning_days: a whole number of days >= 0 (default {DEFAULT_DATA_WARNING_DAYS}; 0 turns the warning off)")
    tz_name = raw.get("timezone", DEFAULT_TIMEZONE)
    parse_timezone(tz_name, f"{where}.timezone")
    sessions = parse_sessions(raw["trading_sessions"], f"{where}.trading_sessions") if "trading_sessions" in raw else None
    exchange = raw.get("exchange", DEFAULT_EXCHANGE)
    if exchange not in EXCHANGES:
        raise PolicyError(f"{where}.exchange: {exchange!r} is not supported: use one of {list(EXCHANGES)}")
    year_end = _parse_year_end(raw["year_end_close"], f"{where}.year_end_close") if "year_end_close" in raw else None
    if lead_time is None:
        lead_time = DEFAULT_LEAD_TIME
    if not isinstance(lead_time, int) or isinstance(lead_time, bool) or lead_time < 0:
        raise PolicyError(f"{source}: lead_time_working_days must be a whole number of working days >= 0 (Art. 17: 3)")
    allow = raw.get("allow_test_clock", False)
    if not isinstance(allow, bool):
        raise PolicyError(f"{where}.allow_test_clock: must be true or false")
    return CalendarSettings(tz_name.strip(), sessions, exchange, year_end, lead_time, allow, warning_days)


_ANCHORS = {"last_working_day": (-1, "working"), "last_trading_day": (-1, "trading"),
            "first_working_day": (1, "working"), "first_trading_day": (1, "trading")}


def _parse_year_end(raw, where):
    if not isinstance(raw, dict) or set(raw) != {"start", "end"}:
        raise PolicyError(f"{where}: needs start and end, e.g. {{start: 'last_trading_day 15:00', end: 'first_trading_day 09:15'}}")
    out = []
    for key, side in (("start", -1), ("end", 1)):
        text = str(raw[key]).strip()
        parts = text.split()
        if len(parts) != 2:
            raise PolicyError(f"{where}.{key}: {text!r} must be '<day> HH:MM' where day is MM-DD or an anchor")
        minutes = _parse_hhmm(parts[1], f"{where}.{key}")
        if parts[0] in _ANCHORS:
            if _ANCHORS[parts[0]][0] != side:
                raise PolicyError(f"{where}.{key}: {parts[0]} belongs to the other end of the span")
            out.append(("anchor", parts[0], minutes))
        else:
            match = re.match(r"^(\d{2})-(\d{2})$", parts[0])
            try:
                _dt.date(2024, int(match.group(1)), int(match.group(2)))
            except (AttributeError, ValueError):
                raise PolicyError(f"{where}.{key}: {parts[0]!r} is neither MM-DD nor one of {sorted(_ANCHORS)}") from None
            out.append(("date", (int(match.group(1)), int(match.group(2))), minutes))
    return tuple(out)


# --- windows --------------------------------------------------------------------------------
class Window:
    """One freeze window. ``intervals(a, b, cal)`` gives its [start, end) epoch intervals overlapping [a, b)."""

    def __init__(self, raw, index, source, settings):
        where = f"{source}: freeze_windows[{index}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: each window is a mapping with name, kind and a schedule (cron, start/end or calendar)")
        unknown = set(raw) - _WINDOW_KEYS
        if unknown:
            raise PolicyError(f"{where}: unknown key(s) {sorted(unknown)}: allowed are {sorted(_WINDOW_KEYS)}")
        self.name = raw.get("name")
        if not isinstance(self.name, str) or not self.name.strip():
            raise PolicyError(f"{where}.name: every window needs a name (it appears in refusals)")
        self.kind = raw.get("kind")
        if self.kind not in ("deny", "allow"):
            raise PolicyError(f"{where}.kind: {self.kind!r} must be deny or allow")
        self.description = raw.get("description") or raw.get("reason") or ""
        self.tz_name = raw.get("timezone", settings.timezone_name)
        self.tz = parse_timezone(self.tz_name, f"{where}.timezone")
        schedules = [k for k in ("cron", "start", "calendar") if k in raw]
        if "end" in raw and "start" not in raw:
            schedules.append("end")
        if len(schedules) != 1 or schedules == ["end"]:
            raise PolicyError(f"{where}: give exactly one schedule: cron + duration, start + end, or calendar (got {schedules or 'none'})")
        self.schedule = schedules[0]
        extra = {"cron": {"duration"}, "start": {"end"}, "calendar": {"sessions", "exchange", "span"}}
        for other in ("duration", "end", "sessions", "exchange", "span"):
            if other in raw and other not in extra[self.schedule]:
                raise PolicyError(f"{where}.{other}: does not go with a {self.schedule} schedule")
        if self.schedule == "cron":
            self.cron = CronSpec(raw["cron"], f"{where}.cron")
            if "duration" not in raw:
                raise PolicyError(f"{where}.duration: a cron window needs a duration, e.g. 6h")
            self.duration = parse_duration(raw["duration"], f"{where}.duration").total_seconds()
        elif self.schedule == "start":
            if "end" not in raw:
                raise PolicyError(f"{where}.end: an absolute window needs start and end")
            self.start = _parse_instant(raw["start"], self.tz, f"{where}.start").timestamp()
            self.end = _parse_instant(raw["end"], self.tz, f"{where}.end").timestamp()
            if self.end <= self.start:
                raise PolicyError(f"{where}: end must be after start")
        else:
            self.predicate = raw["calendar"]
            if self.predicate not in CALENDAR_PREDICATES:
                raise PolicyError(f"{where}.calendar: {self.predicate!r} is not a calendar predicate: use one of {list(CALENDAR_PREDICATES)}")
            if ("sessions" in raw or "exchange" in raw) and self.predicate != "trading_session":
                raise PolicyError(f"{where}: sessions and exchange only go with calendar: trading_session")
            if "span" in raw and self.predicate != "year_end_close":
                raise PolicyError(f"{where}.span: only goes with calendar: year_end_close")
            self.sessions = parse_sessions(raw["sessions"], f"{where}.sessions") if "sessions" in raw else settings.sessions
            self.exchange = raw.get("exchange", settings.exchange)
            if self.exchange not in EXCHANGES:
                raise PolicyError(f"{where}.exchange: {self.exchange!r} is not supported: use one of {list(EXCHANGES)}")
            self.span = _parse_year_end(raw["span"], f"{where}.span") if "span" in raw else settings.year_end
        self.selector = Selector(raw, where)
        self.exclude = None
        if "exclude" in raw:
            if not isinstance(raw["exclude"], dict) or not raw["exclude"] or set(raw["exclude"]) - set(SELECTOR_KEYS):
                raise PolicyError(f"{where}.exclude: a mapping of {list(SELECTOR_KEYS)} naming what the window does not apply to")
            self.exclude = Selector(raw["exclude"], f"{where}.exclude")

    def applies_to(self, target):
        if not self.selector.matches(target, self.name):
            return False
        return not (self.exclude and self.exclude.matches(target, self.name))

    def describe_schedule(self):
        if self.schedule == "cron":
            return f"cron '{self.cron.expr}' for {_fmt_duration(self.duration)} ({self.tz_name})"
        if self.schedule == "start":
            return f"{_fmt(self.start, self.tz)} to {_fmt(self.end, self.tz)} {self.tz_name}"
        return f"calendar {self.predicate} ({self.tz_name})"

    # Interval generation --------------------------------------------------------------------
    def intervals(self, a, b, cal, notes=None):
        """Intervals overlapping [a, b); ``notes`` collects why an end is unknown (missing data)."""
        if self.schedule == "start":
            return [(self.start, self.end)] if self.start < b and self.end > a else []
        if self.schedule == "cron":
            return self._cron_intervals(a, b)
        if self.predicate == "year_end_close":
            return self._year_end_intervals(a, b, cal, notes if notes is not None else [])
        return self._day_intervals(a, b, cal)

    def _local_dates(self, a, b):
        day = _dt.datetime.fromtimestamp(a, self.tz).date()
        last = _dt.datetime.fromtimestamp(b, self.tz).date()
        while day <= last:
            yield day
            day += _dt.timedelta(days=1)

    def _at(self, day, minutes):
        # Wall-clock time of ``day`` in the window's zone: on a day the clocks change (Cairo and
        # Jerusalem change on weekdays, Cairo at midnight) midnight plus elapsed minutes would
        # put a 09:15 session an hour off.
        if minutes >= 1440:
            return self._at(day + _dt.timedelta(days=1), minutes - 1440)
        return _dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=self.tz).timestamp()

    def _cron_intervals(self, a, b):
        out = []
        for day in self._local_dates(a - self.duration, b):
            if not self.cron.matches_date(day):
                continue
            midnight = _dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)
            for minutes in self.cron.times:
                start = (midnight + _dt.timedelta(minutes=minutes)).timestamp()
                end = start + self.duration
                if start < b and end > a:
                    out.append((start, end))
        return _merge(out)

    def _day_intervals(self, a, b, cal):
        out = []
        for day in self._local_dates(a, b - 1e-6):
            info = cal.day(day)
            if self.predicate == "trading_session":
                if info.trading[self.exchange]:
                    out.extend((self._at(day, s), self._at(day, e)) for s, e in self.sessions)
            elif not info.working_day:
                out.append((self._at(day, 0), self._at(day, 1440)))
        return _merge([iv for iv in out if iv[0] < b and iv[1] > a])

    def _span_edge(self, spec, year, cal):
        kind, value, minutes = spec
        if kind == "date":
            return self._at(_dt.date(year, value[0], value[1]), minutes)
        direction, which = _ANCHORS[value]
        # Walk inside ``year`` only (backwards from 31 Dec for a start, forwards from 1 Jan for
        # an end), so each edge needs that year's data alone.
        day = _dt.date(year, 12, 31) if direction < 0 else _dt.date(year, 1, 1)
        step = _dt.timedelta(days=direction)
        while True:
            info = cal.day(day)
            if info.working_day if which == "working" else info.trading[self.exchange]:
                return self._at(day, minutes)
            day += step

    def _year_end_intervals(self, a, b, cal, notes):
        out = []
        first_year = _dt.datetime.fromtimestamp(a, self.tz).year - 1
        last_year = _dt.datetime.fromtimestamp(b - 1e-6, self.tz).year
        for year in range(first_year, last_year + 1):
            try:
                start = self._span_edge(self.span[0], year, cal)
            except CalendarError:
                if year < _dt.datetime.fromtimestamp(a, self.tz).year:
                    start = -_INF   # the start lies in an earlier year, before a: it is not needed
                else:
                    raise
            if start >= b:
                continue
            try:
                end = self._span_edge(self.span[1], year + 1, cal)
            except CalendarError as exc:
                # Fail closed: frozen from the start until the next year's data says when it ends.
                end = _INF
                if str(exc) not in notes:
                    notes.append(str(exc))
            if end > a and end > start:
                out.append((start, end))
        return out


def parse_windows(raw_list, source, calendar_section=None, settings=None):
    """Validate the policy's ``freeze_windows`` list; errors name ``source``, the path and the fix."""
    if settings is None:
        settings = parse_calendar_settings(calendar_section, source)   # checked even without windows
    if raw_list is None:
        return []
    if not isinstance(raw_list, list):
        raise PolicyError(f"{source}: freeze_windows must be a list of windows (use [] for none)")
    windows, seen = [], {}
    for index, raw in enumerate(raw_list):
        window = Window(raw, index, source, settings)
        if window.name in seen:
            raise PolicyError(f"{source}: freeze_windows[{index}].name: {window.name!r} is also freeze_windows[{seen[window.name]}]: names must be unique")
        seen[window.name] = index
        windows.append(window)
    return windows


def _merge(intervals):
    intervals.sort()
    out = []
    for start, end in intervals:
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _fmt(ts, tz):
    """Local time to the minute, to the second when it is not a whole minute (15:18:20)."""
    if ts in (_INF, -_INF):
        return "unknown"
    moment = _dt.datetime.fromtimestamp(ts, tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second or moment.microsecond else "%Y-%m-%d %H:%M")


def _fmt_duration(seconds):
    """A cron window's duration counts elapsed time: ``1d`` is 24 hours, so across a DST change
    it ends an hour earlier or later on the wall clock; the text says so."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    text = "".join(f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (mins, "m")) if v) or "0m"
    return f"{text} ({int(seconds // 3600)} elapsed hours)" if days else text


# --- evaluation -----------------------------------------------------------------------------
class Segment:
    """A stretch of time with one state: open or frozen, and the windows that decide it."""

    __slots__ = ("start", "end", "open", "deny", "allow", "allows_apply")

    def __init__(self, start, end, is_open, deny, allow, allows_apply):
        self.start, self.end, self.open = start, end, is_open
        self.deny, self.allow, self.allows_apply = deny, allow, allows_apply

    @property
    def decided_by(self):
        if self.deny:
            return list(self.deny)
        if self.allows_apply:
            return list(self.allow) if self.open else list(self.allows_apply)
        return []

    def reason(self):
        if self.deny:
            return "deny window " + ", ".join(repr(n) for n in self.deny)
        if self.allows_apply and not self.open:
            return "allow window " + ", ".join(repr(n) for n in self.allows_apply) + " (outside all of them)"
        if self.allow:
            return "inside allow window " + ", ".join(repr(n) for n in self.allow)
        return "no window applies"

    def key(self):
        return (self.open, self.deny, self.allow)


class FreezeSchedule:
    """The windows that apply to one target, evaluated month by month and cached.

    ``status_at`` is a cached lookup (cheap enough for every ``serial`` batch and for the
    minute-by-minute bench); ``decide`` adds when the freeze ends and the next open slot.
    """

    def __init__(self, windows, target, settings=None, calendar=None):
        self.target = target
        self.settings = settings or CalendarSettings()
        self.calendar = calendar or default_calendar()
        self.windows = [w for w in windows if w.applies_to(target)]
        self.denies = [w for w in self.windows if w.kind == "deny"]
        self.allow_names = tuple(w.name for w in self.windows if w.kind == "allow")
        self._chunks = {}
        self._last = None
        self._notes = {}

    # Chunks are calendar months in the policy's zone, so a lookup needs that month's data only.
    def _chunk_bounds(self, ts):
        local = _dt.datetime.fromtimestamp(ts, self.settings.tz)
        first = _dt.datetime(local.year, local.month, 1, tzinfo=self.settings.tz)
        nxt = _dt.datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=self.settings.tz)
        return first.timestamp(), nxt.timestamp()

    def _chunk(self, ts):
        last = self._last
        if last is not None and last[0] <= ts < last[1]:
            return last
        a, b = self._chunk_bounds(ts)
        chunk = self._chunks.get(a)
        if chunk is None:
            chunk = self._chunks[a] = self._build(a, b)
        self._last = chunk
        return chunk

    def _build(self, a, b):
        events = {}
        for index, window in enumerate(self.windows):
            for start, end in window.intervals(a, b, self.calendar, self._notes.setdefault(window.name, [])):
                events.setdefault(max(start, a), []).append((index, 1))
                if end < b:
                    events.setdefault(end, []).append((index, -1))
        active = [0] * len(self.windows)
        times = sorted(set(events) | {a})
        starts, segments = [], []
        for i, moment in enumerate(times):
            for index, delta in events.get(moment, ()):
                active[index] += delta
            end = times[i + 1] if i + 1 < len(times) else b
            if end <= moment:
                continue
            deny = tuple(w.name for j, w in enumerate(self.windows) if active[j] > 0 and w.kind == "deny")
            allow = tuple(w.name for j, w in enumerate(self.windows) if active[j] > 0 and w.kind == "allow")
            is_open = not deny and (not self.allow_names or bool(allow))
            seg = Segment(moment, end, is_open, deny, allow, self.allow_names)
            if segments and segments[-1].key() == seg.key():
                segments[-1].end = end
            else:
                starts.append(moment)
                segments.append(seg)
        return (a, b, starts, segments)

    def status_at(self, when):
        """The Segment containing ``when`` (an aware datetime or epoch seconds)."""
        ts = when if isinstance(when, (int, float)) else _aware(when).timestamp()
        chunk = self._chunk(ts)
        return chunk[3][bisect.bisect_right(chunk[2], ts) - 1]

    def is_open(self, when):
        return self.status_at(when).open

    def segments(self, start, end):
        """Merged segments covering [start, end) (aware datetimes), clipped to the range."""
        a, b = _aware(start).timestamp(), _aware(end).timestamp()
        out = []
        ts = a
        while ts < b:
            chunk = self._chunk(ts)
            for seg in chunk[3][bisect.bisect_right(chunk[2], ts) - 1:]:
                if seg.start >= b:
                    break
                piece = Segment(max(seg.start, ts), min(seg.end, b), seg.open, seg.deny, seg.allow, seg.allows_apply)
                if out and out[-1].key() == piece.key() and out[-1].end == piece.start:
                    out[-1].end = piece.end
                else:
                    out.append(piece)
            ts = chunk[1]
        return out

    def _walk(self, ts):
        """Segments from ``ts`` on, across chunks, for at most the lookahead."""
        limit = ts + _LOOKAHEAD_DAYS * 86400
        while ts < limit:
            chunk = self._chunk(ts)
            yield from chunk[3][bisect.bisect_right(chunk[2], ts) - 1:]
            ts = chunk[1]

    def decide(self, when):
        """A Decision at ``when``: open or frozen, by which windows, until when, next open slot."""
        at = _aware(when)
        ts = at.timestamp()
        seg = self.status_at(ts)
        until = next_open = open_until = None
        note = None
        try:
            if seg.open:
                for later in self._walk(ts):
                    if not later.open:
                        open_until = later.start
                        break
            else:
                deciding = set(seg.decided_by)
                for later in self._walk(ts):
                    # A deny freeze lasts while any deny window is active, including one that takes
                    # over where the first ends (docs/freeze-windows.md); an allow freeze until
                    # an allow window starts or a deny window takes over.
                    ended = not later.deny if seg.deny else (later.open or not deciding & set(later.decided_by))
                    if until is None and ended:
                        until = later.start
                    if later.open:
                        next_open = later.start
                        for after in self._walk(later.start):
                            if not after.open:
                                open_until = after.start
                                break
                        break
                if next_open is None:
                    note = f"no open slot in the next {_LOOKAHEAD_DAYS} days"
        except CalendarError as exc:
            note = str(exc)
        notes = [n for name in seg.decided_by for n in self._notes.get(name, ())]
        if note is None and notes and not seg.open and until is None:
            note = notes[-1]
        return Decision(at, seg, until, next_open, open_until, self.settings, self.target, note)


class Decision:
    def __init__(self, at, segment, until, next_open, open_until, settings, target, note=None):
        self.at, self.segment, self.settings, self.target = at, segment, settings, target
        self.until, self.next_open, self.open_until, self.note = until, next_open, open_until, note

    @property
    def open(self):
        return self.segment.open

    def _t(self, ts):
        return None if ts is None or ts in (_INF, -_INF) else _dt.datetime.fromtimestamp(ts, self.settings.tz).isoformat()

    def message(self):
        tz = self.settings.timezone_name
        if self.open:
            tail = f" until {_fmt(self.open_until, self.settings.tz)} {tz}" if self.open_until else ""
            return f"open ({self.segment.reason()}){tail}"
        until = f"{_fmt(self.until, self.settings.tz)} {tz}" if self.until not in (None, _INF) else "unknown"
        nxt = f"{_fmt(self.next_open, self.settings.tz)} {tz}" if self.next_open is not None else "unknown"
        text = f"frozen by {self.segment.reason()} until {until}; next open slot {nxt}"
        if self.note:
            text += f" ({self.note})"
        return text

    def as_dict(self):
        return {
            "at": self.at.astimezone(self.settings.tz).isoformat(),
            "open": self.open,
            "frozen": not self.open,
            "decided_by": self.segment.decided_by,
            "reason": self.segment.reason(),
            "until": self._t(self.until),
            "next_open": self._t(self.next_open),
            "open_until": self._t(self.open_until),
            "timezone": self.settings.timezone_name,
            "target": self.target.as_dict(),
            "note": self.note,
            "message": self.message(),
        }


def _aware(moment):
    if isinstance(moment, (int, float)):
        return _dt.datetime.fromtimestamp(moment, _UTC)
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime (the controller's local zone is never assumed)")
    return moment


# --- Art. 17: lead time ------------------------------------------------------------------------
class LeadTime:
    def __init__(self, ok, required, submitted, install_date, deadline, earliest_install, approval=None, message=""):
        self.ok, self.required, self.submitted, self.install_date = ok, required, submitted, install_date
        self.deadline, self.earliest_install, self.approval, self.message = deadline, earliest_install, approval, message

    def as_dict(self):
        return {"ok": self.ok, "required_working_days": self.required, "plan_submitted_on": self.submitted.isoformat(),
                "install_date": self.install_date.isoformat(), "submit_by": self.deadline.isoformat(),
                "earliest_install_date": self.earliest_install.isoformat() if self.earliest_install else None,
                "approval": self.approval, "message": self.message}


def check_lead_time(submitted_at, planned_start, working_days=DEFAULT_LEAD_TIME, calendar=None, tz=DEFAULT_TIMEZONE, approval=None):
    """Art. 17: the plan is submitted at least ``working_days`` working days before the installation
    date, i.e. on or before the ``working_days``-th working day before it (dates in ``tz``).
    For an installation on 2025-10-09 and 3 days that is 2025-09-28 (a make-up Sunday)."""
    cal = calendar or default_calendar()
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    submitted = _aware(submitted_at).astimezone(zone).date()
    install = _aware(planned_start).astimezone(zone).date()
    deadline = cal.add_working_days(install, -working_days)
    ok = submitted <= deadline
    earliest = submitted
    if ok:
        message = (f"lead time met: plan submitted {submitted}, installation {install}, "
                   f"{working_days} working days needed (submit by {deadline})")
    else:
        try:
            if working_days:
                # The earliest date whose deadline is still on or after the submission date.
                first = submitted if cal.is_working_day(submitted) else cal.add_working_days(submitted, 1)
                earliest = cal.add_working_days(first, working_days - 1) + _dt.timedelta(days=1)
            move = f"move the installation to {earliest} or later"
        except CalendarError as exc:
            earliest, move = None, f"the earliest installation date is unknown ({exc})"
        message = (f"lead time not met (Art. 17): the plan was submitted {submitted} but an installation on {install} "
                   f"needs it by {deadline} ({working_days} working days before, make-up days counted): "
                   f"{move}, or pass it as an emergency change")
    return LeadTime(ok, working_days, submitted, install, deadline, earliest, approval, message)


def _field(item, name, default=None):
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def lead_time_from_approvals(approvals, at=None, working_days=DEFAULT_LEAD_TIME, calendar=None, tz=DEFAULT_TIMEZONE):
    """Apply :func:`check_lead_time` to the earliest verified ``plan_submission`` approval.

    ``approvals`` are already verified (``approvals.verify_evidence(...).valid``): objects or
    dicts with stage, role, person, issued_at, decision and the ``planned_start`` the plan binds.
    The installation date is the earlier of that planned start and ``at`` (the run's clock): a
    change run before its planned start had only the lead time it really had."""
    plans = [a for a in approvals if _field(a, "stage") == "plan_submission" and _field(a, "decision", "approve") == "approve"]
    if not plans:
        raise ApprovalError("no verified plan_submission approval: Art. 17 needs the deployment plan signed by the IT head "
                            "at least 3 working days before installation; sign it with `prodgate approve --stage plan_submission`")
    plan = min(plans, key=lambda a: _to_dt(_field(a, "issued_at"), "issued_at"))
    start = _field(plan, "planned_start")
    if start is None and at is None:
        raise ApprovalError("the plan_submission approval names no planned_start: "
                            "sign the plan with `prodgate approve --stage plan_submission --planned-start ...`")
    start = _to_dt(start, "planned_start") if start is not None else None
    if at is not None and (start is None or _aware(at) < start):
        start = _aware(at)
    summary = {"person": _field(plan, "person"), "role": _field(plan, "role"),
               "issued_at": _to_dt(_field(plan, "issued_at"), "issued_at").isoformat()}
    return check_lead_time(_to_dt(_field(plan, "issued_at"), "issued_at"), start, working_days, calendar, tz, summary)


def _data_end(calendar, at, tz):
    last = calendar.last_covered_date(_aware(at).astimezone(tz).date())
    return last.isoformat() if last else None


def _to_dt(value, name):
    if isinstance(value, _dt.datetime):
        return _aware(value)
    if isinstance(value, str):
        try:
            moment = _dt.datetime.fromisoformat(value)
        except ValueError:
            raise ApprovalError(f"{name} {value[:64]!r} is not an ISO 8601 date-time with offset "
                                "(e.g. 2026-03-02T09:00:00+08:00): re-sign the approval with `prodgate approve`") from None
        if moment.tzinfo is None:
            raise ApprovalError(f"{name} {value!r} has no UTC offset: approvals carry aware times")
        return moment
    raise ApprovalError(f"{name} is missing or not a date-time ({value!r})")


# --- emergency override -----------------------------------------------------------------------
class Override:
    def __init__(self, ok, roles, threshold, used, message):
        self.ok, self.roles, self.threshold, self.used, self.message = ok, roles, threshold, used, message

    def as_dict(self):
        return {"ok": self.ok, "authorisers": list(self.roles), "threshold": self.threshold,
                "approvals": self.used, "message": self.message}


def check_emergency_override(approvals, roles, threshold=1, at=None):
    """A frozen change passes only with verified ``emergency_override`` approvals, each with a
    reason, from ``threshold`` distinct people holding one of ``roles`` (the policy's
    ``emergency.authorisers``), valid at ``at`` when they carry not_before / not_after.
    There is no other bypass: no role, flag or variable skips a freeze."""
    roles = tuple(roles or ())
    if not roles or not threshold or threshold < 1:
        return Override(False, roles, threshold, [], "the policy names no role that may authorise an emergency override "
                                                     "(emergency.authorisers): wait for the next open slot")
    used, persons, rejected = [], set(), []
    for item in approvals:
        if _field(item, "stage") != "emergency_override" or _field(item, "decision", "approve") != "approve":
            continue
        role, person, reason = _field(item, "role"), _field(item, "person"), _field(item, "reason")
        if role not in roles:
            rejected.append(f"{person} signed as {role}, which may not authorise overrides")
        elif not (isinstance(reason, str) and reason.strip()):
            rejected.append(f"{person} ({role}) gave no reason")
        elif at is not None and not _within(item, at):
            rejected.append(f"{person} ({role}) is not valid at {at.isoformat()}")
        elif person not in persons:
            persons.add(person)
            used.append({"role": role, "person": person, "reason": reason.strip(),
                         "issued_at": _iso(_field(item, "issued_at")), "not_after": _iso(_field(item, "not_after"))})
    if len(persons) < threshold:
        detail = f"; not counted: {'; '.join(rejected)}" if rejected else ""
        return Override(False, roles, threshold, used,
                        f"no emergency override: it needs {threshold} signed emergency_override approval(s) with a reason "
                        f"from {list(roles)}, found {len(persons)}{detail}; "
                        "sign with `prodgate approve --stage emergency_override --reason ...`")
    return Override(True, roles, threshold, used, "emergency override used: " + "; ".join(
        f"{u['person']} ({u['role']}): {u['reason']}" for u in used))


def _within(item, at):
    nb, na = _field(item, "not_before"), _field(item, "not_after")
    if nb is not None and at < _to_dt(nb, "not_before"):
        return False
    if na is not None and at >= _to_dt(na, "not_after"):
        return False
    return True


def _iso(value):
    return value.isoformat() if isinstance(value, _dt.datetime) else value


# --- policy helpers ----------------------------------------------------------------------------
def settings_from_policy(raw, source):
    return parse_calendar_settings(raw.get("calendar"), source, raw.get("lead_time_working_days"))


def windows_from_policy(raw, source, settings=None):
    settings = settings or settings_from_policy(raw, source)
    return parse_windows(raw.get("freeze_windows"), source, settings=settings)


def system_category(raw, system):
    """The system's category from the policy catalogue (a list of {id, category} or a mapping by id)."""
    systems = raw.get("systems")
    if isinstance(systems, dict):
        entry = systems.get(system)
        return entry.get("category") if isinstance(entry, dict) else None
    if isinstance(systems, list):
        for entry in systems:
            if isinstance(entry, dict) and entry.get("id") == system:
                return entry.get("category")
    return None


# --- the change_window decision -----------------------------------------------------------------
def evaluate_change(raw, source, target, at, approvals=(), lead_time_required=False, emergency=None,
                    calendar=None, evidence_problems=(), governance=None):
    """Everything the ``change_window`` gate decides, as a dict (pure: the caller verifies evidence).

    ``raw`` is the verified policy document, ``approvals`` its verified approvals for this change,
    ``lead_time_required`` whether the change needs a plan_submission (Art. 17), ``emergency`` the
    policy's ``emergency`` rules (authorisers, threshold, waives). ``allowed`` is true when the
    change is open and the lead time is met, or when a valid emergency override covers every
    problem (a freeze always; the lead time only when ``plan_submission`` is in ``waives``).

    The calendar is the collection's years plus the signed packs the policy names in
    ``calendar.packs``, verified with ``governance`` (the pinned root that verified the policy;
    default the policy's own governance keys). ``warnings`` says when the data ends within
    ``calendar.data_warning_days`` (60) days of the change."""
    from . import calendar_pack  # pylint: disable=import-outside-toplevel  # it imports policy, which imports us
    settings = settings_from_policy(raw, source)
    if calendar is None:
        calendar = calendar_pack.calendar_for_policy(raw, source, governance)
    schedule = FreezeSchedule(windows_from_policy(raw, source, settings), target, settings, calendar)
    decision = schedule.decide(at)
    warning = calendar_pack.coverage_warning(calendar, _aware(at).astimezone(settings.tz).date(), settings.data_warning_days)
    result = {"allowed": False, "open": decision.open, "frozen": not decision.open, "window": decision.as_dict(),
              "lead_time": None, "override_used": False, "override": None, "evaluated_at": decision.as_dict()["at"],
              "timezone": settings.timezone_name, "windows_applying": [w.name for w in schedule.windows],
              "warnings": [warning] if warning else [], "calendar_data_ends": _data_end(calendar, at, settings.tz)}
    if warning:
        result["window"]["warning"] = warning
    problems, waivable = [], True
    if not decision.open:
        problems.append(decision.message())
    if lead_time_required and settings.lead_time:
        try:
            lead = lead_time_from_approvals(approvals, at, settings.lead_time, schedule.calendar, settings.tz)
            result["lead_time"] = lead.as_dict()
            if not lead.ok:
                problems.append(lead.message)
                waivable = waivable and "plan_submission" in ((emergency or {}).get("waives") or ())
        except ApprovalError as exc:
            result["lead_time"] = {"ok": False, "message": str(exc)}
            problems.append(str(exc))
            waivable = waivable and "plan_submission" in ((emergency or {}).get("waives") or ())
    if not problems:
        result["allowed"] = True
        result["message"] = f"{target.system}: {decision.message()}" + (
            f"; {result['lead_time']['message']}" if result["lead_time"] else "") + (
            f"; WARNING: {warning}" if warning else "")
        return result
    emergency = emergency or {}
    override = check_emergency_override(approvals, emergency.get("authorisers"), emergency.get("threshold", 1), at)
    result["override"] = override.as_dict()
    if override.ok and waivable:
        result.update(allowed=True, override_used=True)
        result["message"] = f"{target.system}: EMERGENCY OVERRIDE for: {' | '.join(problems)}; {override.message}"
        return result
    tail = override.message if not override.ok else "the emergency override does not waive the plan lead time (emergency.waives)"
    if evidence_problems and not override.ok:
        tail += "; evidence problems: " + " | ".join(evidence_problems)
    result["message"] = f"{target.system}: {' | '.join(problems)}; {tail}"
    return result
