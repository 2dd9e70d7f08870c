"""Freeze windows: parsing and validating the policy's windows, their selectors and targets.

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
* ``lead_time_working_days``: Art. 17's three working days (default 3; the rule is governance/lead_time.py).

The settings are parsed in settings.py, cron in cron.py, and the decision at an instant in freeze.py;
the change window's whole decision (lead time, emergency override) is governance/window_gate.py.

Semantics (Argo CD's sync windows, tightened; see docs/freeze-windows.md): every window is the
half-open interval [start, end); deny wins; if any allow window applies to a target, the change
must fall inside one of them; no applicable window means open. Everything is evaluated at the
instant the task runs. Anything unparsable, an unknown time zone or a year without calendar data
fails closed with an error naming the file, the path and the fix.
"""
import datetime as _dt
import fnmatch

from ..base import INF, fmt_duration, fmt_instant, parse_duration, parse_instant, parse_timezone
from ..errors import CalendarError, PolicyError
from .calendar import EXCHANGES
from .cron import CronSpec
from .settings import ANCHORS, parse_calendar_settings, parse_sessions, parse_year_end, settings_from_policy

CHANGE_TYPES = ("initial_go_live", "version_update", "routine", "non_routine", "maintenance", "environment")
CALENDAR_PREDICATES = ("trading_session", "non_working_day", "year_end_close")
SELECTOR_KEYS = ("systems", "categories", "environments", "change_types")
_TARGET_FIELD = {"systems": "system", "categories": "category", "environments": "environment", "change_types": "change_type"}
_WINDOW_KEYS = frozenset(("name", "kind", "description", "reason", "timezone", "cron", "duration", "start", "end",
                          "calendar", "sessions", "exchange", "span", "exclude") + SELECTOR_KEYS)


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
            self.start = parse_instant(raw["start"], self.tz, f"{where}.start").timestamp()
            self.end = parse_instant(raw["end"], self.tz, f"{where}.end").timestamp()
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
            self.span = parse_year_end(raw["span"], f"{where}.span") if "span" in raw else settings.year_end
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
            return f"cron '{self.cron.expr}' for {fmt_duration(self.duration)} ({self.tz_name})"
        if self.schedule == "start":
            return f"{fmt_instant(self.start, self.tz)} to {fmt_instant(self.end, self.tz)} {self.tz_name}"
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
        return merge_intervals(out)

    def _day_intervals(self, a, b, cal):
        out = []
        for day in self._local_dates(a, b - 1e-6):
            info = cal.day(day)
            if self.predicate == "trading_session":
                if info.trading[self.exchange]:
                    out.extend((self._at(day, s), self._at(day, e)) for s, e in self.sessions)
            elif not info.working_day:
                out.append((self._at(day, 0), self._at(day, 1440)))
        return merge_intervals([iv for iv in out if iv[0] < b and iv[1] > a])

    def _span_edge(self, spec, year, cal):
        kind, value, minutes = spec
        if kind == "date":
            return self._at(_dt.date(year, value[0], value[1]), minutes)
        direction, which = ANCHORS[value]
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
                    start = -INF   # the start lies in an earlier year, before a: it is not needed
                else:
                    raise
            if start >= b:
                continue
            try:
                end = self._span_edge(self.span[1], year + 1, cal)
            except CalendarError as exc:
                # Fail closed: frozen from the start until the next year's data says when it ends.
                end = INF
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


def windows_from_policy(raw, source, settings=None):
    """The validated ``freeze_windows`` of a policy document."""
    settings = settings or settings_from_policy(raw, source)
    return parse_windows(raw.get("freeze_windows"), source, settings=settings)


def merge_intervals(intervals):
    intervals.sort()
    out = []
    for start, end in intervals:
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out
