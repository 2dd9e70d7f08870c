# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy's ``calendar`` section: time zone, trading sessions, exchange, year-end close, lead time."""
import datetime as _dt
import os
import re
from zoneinfo import ZoneInfo

from ..base import DEFAULT_TIMEZONE, parse_timezone
from ..errors import PolicyError
from .calendar import DEFAULT_EXCHANGE, EXCHANGES

DEFAULT_SESSIONS = ("09:15-11:30", "13:00-15:00")
DEFAULT_YEAR_END = {"start": "last_trading_day 15:00", "end": "first_trading_day 09:15"}
DEFAULT_LEAD_TIME = 3
DEFAULT_DATA_WARNING_DAYS = 60


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


class CalendarSettings:
    def __init__(self, timezone=DEFAULT_TIMEZONE, sessions=None, exchange=DEFAULT_EXCHANGE, year_end=None,
                 lead_time=DEFAULT_LEAD_TIME, allow_test_clock=False, data_warning_days=DEFAULT_DATA_WARNING_DAYS):
        self.timezone_name = timezone
        self.tz = ZoneInfo(timezone)
        self.sessions = sessions or parse_sessions(list(DEFAULT_SESSIONS), "calendar.trading_sessions")
        self.exchange = exchange
        self.year_end = year_end or parse_year_end(DEFAULT_YEAR_END, "calendar.year_end_close")
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
    pack_references(raw, source)
    warning_days = raw.get("data_warning_days", DEFAULT_DATA_WARNING_DAYS)
    if not isinstance(warning_days, int) or isinstance(warning_days, bool) or warning_days < 0:
        raise PolicyError(f"{where}.data_warning_days: a whole number of days >= 0 (default {DEFAULT_DATA_WARNING_DAYS}; 0 turns the warning off)")
    tz_name = raw.get("timezone", DEFAULT_TIMEZONE)
    parse_timezone(tz_name, f"{where}.timezone")
    sessions = parse_sessions(raw["trading_sessions"], f"{where}.trading_sessions") if "trading_sessions" in raw else None
    exchange = raw.get("exchange", DEFAULT_EXCHANGE)
    if exchange not in EXCHANGES:
        raise PolicyError(f"{where}.exchange: {exchange!r} is not supported: use one of {list(EXCHANGES)}")
    year_end = parse_year_end(raw["year_end_close"], f"{where}.year_end_close") if "year_end_close" in raw else None
    if lead_time is None:
        lead_time = DEFAULT_LEAD_TIME
    if not isinstance(lead_time, int) or isinstance(lead_time, bool) or lead_time < 0:
        raise PolicyError(f"{source}: lead_time_working_days must be a whole number of working days >= 0 (Art. 17: 3)")
    allow = raw.get("allow_test_clock", False)
    if not isinstance(allow, bool):
        raise PolicyError(f"{where}.allow_test_clock: must be true or false")
    return CalendarSettings(tz_name.strip(), sessions, exchange, year_end, lead_time, allow, warning_days)


def settings_from_policy(raw, source):
    """The calendar settings of a policy document: its ``calendar`` section and ``lead_time_working_days``."""
    return parse_calendar_settings(raw.get("calendar"), source, raw.get("lead_time_working_days"))


ANCHORS = {"last_working_day": (-1, "working"), "last_trading_day": (-1, "trading"),
           "first_working_day": (1, "working"), "first_trading_day": (1, "trading")}


def parse_year_end(raw, where):
    if not isinstance(raw, dict) or set(raw) != {"start", "end"}:
        raise PolicyError(f"{where}: needs start and end, e.g. {{start: 'last_trading_day 15:00', end: 'first_trading_day 09:15'}}")
    out = []
    for key, side in (("start", -1), ("end", 1)):
        text = str(raw[key]).strip()
        parts = text.split()
        if len(parts) != 2:
            raise PolicyError(f"{where}.{key}: {text!r} must be '<day> HH:MM' where day is MM-DD or an anchor")
        minutes = _parse_hhmm(parts[1], f"{where}.{key}")
        if parts[0] in ANCHORS:
            if ANCHORS[parts[0]][0] != side:
                raise PolicyError(f"{where}.{key}: {parts[0]} belongs to the other end of the span")
            out.append(("anchor", parts[0], minutes))
        else:
            match = re.match(r"^(\d{2})-(\d{2})$", parts[0])
            try:
                _dt.date(2024, int(match.group(1)), int(match.group(2)))
            except (AttributeError, ValueError):
                raise PolicyError(f"{where}.{key}: {parts[0]!r} is neither MM-DD nor one of {sorted(ANCHORS)}") from None
            out.append(("date", (int(match.group(1)), int(match.group(2))), minutes))
    return tuple(out)


def pack_references(calendar_section, source):
    """Validate ``calendar.packs`` of the policy in ``source`` -> [(file, sha256, version)]."""
    where = f"{source}: calendar.packs"
    raw = (calendar_section or {}).get("packs") if isinstance(calendar_section, dict) else None
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: must be a list of {{file: calendar-2027.yml, sha256: <hex>}}")
    out, seen = [], set()
    for i, ref in enumerate(raw):
        path = f"{where}[{i}]"
        if not isinstance(ref, dict) or set(ref) - {"file", "sha256", "version"} or not ref.get("file") or not ref.get("sha256"):
            raise PolicyError(f"{path}: write {{file: calendar-2027.yml, sha256: <64 hex>, version: 1}} (version optional)")
        name = str(ref["file"])
        if os.path.basename(name) != name or name in (".", "..") or "://" in name:
            raise PolicyError(f"{path}.file: {name!r} must be a file name beside the policy (no directory, no URL)")
        digest = str(ref["sha256"]).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise PolicyError(f"{path}.sha256: must be the pack file's sha256 in 64 hex digits (`prodgate calendar sign` prints it)")
        version = ref.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            raise PolicyError(f"{path}.version: must be a whole number >= 1")
        if name in seen:
            raise PolicyError(f"{path}.file: {name!r} is named twice")
        seen.add(name)
        out.append((name, digest, version))
    return out
