# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time and canonical JSON: the one home of each, below every room of the core.

Parsing an instant, a duration or a time zone, formatting a local time, and the canonical JSON
that signatures and the register hash are written here once; governance/, schedule/ and register/
call them. Errors are PolicyError (a policy field) or InputError (a value given on the command line
or in evidence), and they name the field and the fix.
"""
import datetime as _dt
import json
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InputError, PolicyError

DEFAULT_TIMEZONE = "Asia/Shanghai"
INF = float("inf")
UTC = _dt.timezone.utc
# Times outside these years are refused: arithmetic on them (a validity window, a deadline a day
# later) would overflow datetime, and no approval or policy is meant for them.
TIME_YEARS = (1970, 9000)


def utcnow():
    """The controller's clock, aware, in UTC."""
    return _dt.datetime.now(UTC)


def utc_stamp(moment=None):
    """A register time stamp: UTC to the microsecond with a Z (2026-03-02T01:00:00.000000Z)."""
    moment = (moment or utcnow()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso(value):
    """ISO 8601 text of a date or datetime; anything else (already text, None) as it is."""
    return value.isoformat() if isinstance(value, (_dt.datetime, _dt.date)) else value


def read_stamp(value):
    """A register time stamp (ISO 8601, Z or an offset; UTC when it has none) as an aware datetime, or
    None when it is missing or unreadable: reports show what they cannot read as it is."""
    if not value:
        return None
    try:
        moment = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def canonical_json(obj):
    """The one serialisation that is signed or hashed: sorted keys, no spaces, UTF-8, no NaN.
    A value that is not plain JSON data raises TypeError or ValueError."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def parse_time(value, where):
    """ISO-8601 with an offset -> aware datetime, or an InputError (a ProdgateError and a ValueError)
    naming ``where``: the CLI prints it as its error line, validators catch it as a ValueError."""
    if not isinstance(value, str):
        raise InputError(f"{where}: expected an ISO-8601 timestamp string with offset, got {value!r}"[:300])
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{where}: {value[:64]!r} is not an ISO-8601 timestamp (e.g. 2026-03-02T09:00:00+08:00)") from None
    if parsed.tzinfo is None:
        raise InputError(f"{where}: {value!r} has no UTC offset; add one, e.g. {value}+08:00")
    try:
        year = parsed.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not TIME_YEARS[0] <= year < TIME_YEARS[1]:
        raise InputError(f"{where}: {value!r} is out of range; give a time between the years {TIME_YEARS[0]} "
                         f"and {TIME_YEARS[1] - 1}")
    return parsed


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
        year = moment.astimezone(UTC).year
    except (OverflowError, ValueError):
        year = 0
    if not 1970 <= year < 9000:  # arithmetic around it (days, sessions) would overflow datetime
        raise PolicyError(f"{where}: {value!r} is out of range: give a time between the years 1970 and 8999")
    return moment


def parse_instant(value, tz=None, where="time"):
    """Public form of the above for the CLI and the action plugin (default zone Asia/Shanghai)."""
    return _parse_instant(value, tz or ZoneInfo(DEFAULT_TIMEZONE), where)


def aware(moment):
    if isinstance(moment, (int, float)):
        return _dt.datetime.fromtimestamp(moment, UTC)
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime (the controller's local zone is never assumed)")
    return moment


def fmt_instant(ts, tz):
    """Local time to the minute, to the second when it is not a whole minute (15:18:20)."""
    if ts in (INF, -INF):
        return "unknown"
    moment = _dt.datetime.fromtimestamp(ts, tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second or moment.microsecond else "%Y-%m-%d %H:%M")


def fmt_duration(seconds):
    """A cron window's duration counts elapsed time: ``1d`` is 24 hours, so across a DST change
    it ends an hour earlier or later on the wall clock; the text says so."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    text = "".join(f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (mins, "m")) if v) or "0m"
    return f"{text} ({int(seconds // 3600)} elapsed hours)" if days else text
