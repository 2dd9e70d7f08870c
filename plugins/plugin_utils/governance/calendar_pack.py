"""Calendar packs: a year's working-day and exchange data, signed by the governance keys.

The collection ships reviewed years in ``calendar_data/``; the State Council publishes next
year's holiday arrangement late in the year, and operations must be able to add it the week it
is published, reviewed and signed, without a collection release (in AWX that would mean a new
execution environment). A calendar pack is that year's data in the same fields as a
``calendar_data/<year>.yml`` file, plus::

    schema: prodgate/calendar-pack/v1
    version: 1            # raise it for every corrected pack of the same year
    year: 2027
    signatures: [{keyid, sig}]

The signed policy names the packs it uses, beside the policy file, with their sha256::

    calendar:
      packs:
        - {file: calendar-2027.yml, sha256: <hex>, version: 1}

A pack counts only when (1) the policy that names it verified, (2) the file's sha256 is the one
the policy names, (3) the governance keys that verify the policy (the pinned root when there is
one) signed it to their threshold, under its own DSSE payload type so that a policy signature can
never be replayed as a pack signature or the reverse, and (4) its version is above the version
of the collection's own file for that year, if any (no rollback behind the shipped data; the
sha256 pin keeps an older signed pack out unless the governance keys sign a policy naming it).
A draft made from a library (``prodgate calendar draft``) says ``provisional: true`` and cannot
be signed until a person has compared it with the official notice and removed that line.
"""
import datetime as _dt
import hashlib
import os
import threading
from importlib import metadata

import yaml

from . import dsse
from ..errors import CalendarError, PolicyError
from ..schedule.calendar import DATA_DIR, EXCHANGES, WorkCalendar, default_calendar, validate_year
from ..schedule.settings import pack_references, settings_from_policy
from . import policy as policy_core, policy_schema
from .release import sha256_file

PACK_SCHEMA = "prodgate/calendar-pack/v1"
PACK_PAYLOAD_TYPE = "application/vnd.prodgate.calendar-pack+json"
DEFAULT_WARNING_DAYS = 60
SOURCES = ("holidays", "exchange_calendars", "chinesecalendar")
_PACK_KEYS = frozenset(("schema", "version", "year", "provisional", "provenance", "sources", "holidays",
                        "makeup_working_days", "exchange_closures", "signatures"))
_REVIEW_MARK = "REVIEW:"
_ONE_DAY = _dt.timedelta(days=1)


# --- reading and checking one pack ----------------------------------------------------------------
def read_pack(path):
    """(document, sha256 of the file's bytes); dates stay strings, as in the signed bytes."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise CalendarError(f"calendar pack {path} cannot be read: {exc.strerror}; put the signed pack beside the policy") from None
    try:
        doc = yaml.load(data.decode("utf-8"), Loader=policy_schema.Loader)  # nosec B506 - a SafeLoader
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CalendarError(f"calendar pack {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise CalendarError(f"calendar pack {path}: must be a mapping with schema: {PACK_SCHEMA}")
    return doc, hashlib.sha256(data).hexdigest()


def pack_body(doc):
    return {k: v for k, v in doc.items() if k != "signatures"}


def _payload(doc):
    return policy_core.canonical_json(pack_body(doc))


def check_pack(doc, where):
    """Schema problems of a pack (a list of 'where: what; fix'); validates the year's data too."""
    problems = []
    if doc.get("schema") != PACK_SCHEMA:
        problems.append(f"{where}: schema must be {PACK_SCHEMA!r} (got {doc.get('schema')!r})")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(f"{where}: version must be a whole number >= 1, raised for every corrected pack of the year")
    year = doc.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not 1990 <= year <= 2200:
        problems.append(f"{where}: year must be a year such as 2027")
    unknown = sorted(set(doc) - _PACK_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}: allowed are {sorted(_PACK_KEYS)}")
    if isinstance(year, int):
        try:
            validate_year(pack_body(doc), year, where)
        except CalendarError as exc:
            problems.append(str(exc))
    if doc.get("provisional"):
        problems.append(f"{where}: is a provisional draft (provisional: true): compare every day with the State Council "
                        "notice and the exchanges' notices, fix what differs, cite them under sources, then delete the "
                        "`provisional` line")
    text = yaml.safe_dump(doc.get("sources"), allow_unicode=True)
    if _REVIEW_MARK in text:
        problems.append(f"{where}: sources still contain {_REVIEW_MARK!r} placeholders: cite the notices the data was checked against")
    return problems


def sign_pack(doc, private_key):
    """Add (or replace) ``private_key``'s signature; returns the key id."""
    return dsse.add_signature(doc, private_key, PACK_PAYLOAD_TYPE, _payload(doc))


def dump_pack(doc):
    body = pack_body(doc)
    header = f"# Calendar pack for {body.get('year')} ({PACK_SCHEMA}); see docs/freeze-windows.md#calendar-packs\n"
    return dsse.dump_signed(body, doc.get("signatures"), header)


def verify_pack(doc, governance, where):
    """Key ids of the governance keys whose signature verifies; CalendarError below the threshold."""
    good = policy_core.governance_signers(doc.get("signatures"), governance, PACK_PAYLOAD_TYPE, _payload(doc), where)
    if len(good) < governance["threshold"]:
        raise CalendarError(
            f"calendar pack {where}: {len(good)} valid governance signature(s), need {governance['threshold']}: the pack was "
            "altered after signing or signed by other keys; have the governance key holders sign it with "
            "`prodgate calendar sign`")
    return good


def shipped_version(year, data_dir=None):
    """The ``version`` of the collection's own file for ``year`` (0 when it has none or no file)."""
    path = os.path.join(data_dir or DATA_DIR, f"{year}.yml")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    version = raw.get("version", 0) if isinstance(raw, dict) else 0
    return version if isinstance(version, int) else 0


def load_pack(path, governance, sha256=None, version=None, data_dir=None):
    """A verified pack document: sha256 pin, schema and data, signatures, version (no rollback)."""
    doc, digest = read_pack(path)
    if sha256 is not None and digest != str(sha256).lower():
        raise CalendarError(f"calendar pack {path}: sha256 is {digest}, the policy names {sha256}: the file is not the pack "
                            "the governance keys signed into the policy; restore it, or name the new pack in the policy and re-sign it")
    problems = check_pack(doc, path)
    if problems:
        raise CalendarError("; ".join(problems))
    verify_pack(doc, governance, path)
    if version is not None and doc["version"] != version:
        raise CalendarError(f"calendar pack {path}: is version {doc['version']}, the policy names version {version}: "
                            "use the pack the policy names")
    floor = shipped_version(doc["year"], data_dir)
    if floor is not None and doc["version"] <= floor:
        raise CalendarError(f"calendar pack {path}: version {doc['version']} for {doc['year']} is not above the collection's "
                            f"own data (version {floor}): a pack may replace shipped data only with a higher version")
    return doc


# --- the packs a policy names -------------------------------------------------------------------


_CACHE = {}
_CACHE_LOCK = threading.Lock()


def calendar_for_policy(raw, source, governance=None, data_dir=None):
    """The WorkCalendar for a verified policy: the collection's years plus the packs it names.

    ``governance`` is what verified the policy: the pinned root (its file or its parsed
    ``{threshold, keys}``); without it, the policy's own ``governance`` section, which the
    verified signatures cover."""
    refs = pack_references(raw.get("calendar"), source)
    if not refs:
        return default_calendar() if data_dir is None else WorkCalendar(data_dir)
    if isinstance(governance, (str, os.PathLike)):
        governance = policy_core.load_root(os.fspath(governance))
    governance = governance or raw.get("governance")
    if not isinstance(governance, dict) or not governance.get("keys"):
        raise CalendarError(f"{source}: calendar.packs needs the governance keys to verify the packs (governance section or pinned root)")
    folder = os.path.dirname(os.path.abspath(source))
    keyids = tuple(sorted(dsse.keyid_of(k["public_key"]) for k in governance["keys"]))
    key = (folder, tuple(refs), keyids, governance.get("threshold"), data_dir)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None and all(_sha256(os.path.join(folder, name)) == digest for name, digest, _v in refs):
        return cached
    packs = {}
    for name, digest, version in refs:
        path = os.path.join(folder, name)
        doc = load_pack(path, governance, digest, version, data_dir)
        if doc["year"] in packs:
            raise CalendarError(f"{source}: calendar.packs names two packs for {doc['year']} ({packs[doc['year']][1]} and {path}): "
                                "name one, the newer version")
        packs[doc["year"]] = (pack_body(doc), path)
    cal = WorkCalendar(data_dir, packs=packs)
    with _CACHE_LOCK:
        _CACHE[key] = cal
    return cal


def _sha256(path):
    try:
        return sha256_file(path)
    except OSError:
        return None


# --- how far the data reaches ----------------------------------------------------------------------
def calendar_names():
    return ["CN working days"] + [f"{ex} trading days" for ex in EXCHANGES]


def coverage(cal, today):
    """One row per calendar: last covered date from ``today``'s year on, days left, where the
    last year comes from and whether it is provisional."""
    last = cal.last_covered_date(today)
    info = cal.year(last.year) if last else None
    rows = []
    for name in calendar_names():
        rows.append({
            "calendar": name,
            "last_date": last.isoformat() if last else None,
            "days_left": (last - today).days if last else None,
            "years": cal.available_years(),
            "last_year_from": cal.origin(last.year) if last else None,
            "last_year_path": info.path if info else None,
            "provisional": info.provisional if info else None,
        })
    return rows


def coverage_warning(cal, when, warning_days=DEFAULT_WARNING_DAYS):
    """A warning when the data ends within ``warning_days`` days of ``when`` (a date), else None."""
    if not warning_days:
        return None
    last = cal.last_covered_date(when)
    if last is None:
        return None   # the year itself has no data: the check fails closed on its own
    left = (last - when).days
    if left > warning_days:
        return None
    year = last.year + 1
    return (f"calendar data ends {last} ({left} day(s) after {when}, warning at {warning_days}): add {year} before then: "
            f"`prodgate calendar draft --year {year} --source holidays`, review it against the State Council notice, "
            f"`prodgate calendar sign`, and name the pack in the policy's calendar.packs")


def policy_warning(raw, source, when, governance=None):
    """The calendar warning for a change at ``when`` (aware) under a verified policy, for results
    that do not otherwise read the calendar (the approval gate): None, the data-end warning, or
    why the policy's calendar packs cannot be used (the change window then refuses)."""
    try:
        settings = settings_from_policy(raw, source)
        cal = calendar_for_policy(raw, source, governance)
    except (CalendarError, PolicyError) as exc:
        return f"the calendar packs of the policy cannot be used, so change_window will refuse: {exc}"
    return coverage_warning(cal, when.astimezone(settings.tz).date(), settings.data_warning_days)


# --- drafting from an installed library ----------------------------------------------------------
_EN_NAMES = {
    "new year's day": ("New Year's Day", "元旦"), "chinese new year's eve": ("Spring Festival", "春节"),
    "chinese new year (spring festival)": ("Spring Festival", "春节"), "tomb-sweeping day": ("Tomb-sweeping Day", "清明节"),
    "labor day": ("Labour Day", "劳动节"), "labour day": ("Labour Day", "劳动节"),
    "dragon boat festival": ("Dragon Boat Festival", "端午节"), "mid-autumn festival": ("Mid-autumn Festival", "中秋节"),
    "national day": ("National Day", "国庆节"),
}


def _version_of(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise CalendarError(f"the source library {dist!r} is not installed: `pip install {dist}` "
                            "(it is in prodgate's test extra)") from None


def _days(year):
    day = _dt.date(year, 1, 1)
    while day.year == year:
        yield day
        day += _ONE_DAY


def _clean_name(name):
    base = str(name).split(";", maxsplit=1)[0].replace("(observed)", "").replace("(estimated)", "").strip().lower()
    return _EN_NAMES.get(base, (str(name).strip(), None))


def source_days(year, source):
    """What ``source`` says about each day of ``year``: {date: (working, {exchange: trading}, name)},
    with the library's version and notes on what it does not know. CalendarError when it has no data."""
    if source == "holidays":
        import holidays  # pylint: disable=import-outside-toplevel
        version = _version_of("holidays")
        notes = []
        official = _holidays_official_until()
        if official is None or year > official:
            notes.append(f"holidays {version} has the State Council's arrangement (make-up working days) only up to "
                         f"{official}; for {year} it estimates the festivals from the lunar calendar and adds no make-up days: "
                         "every day must be checked against the notice")
        cn = holidays.China(years=year, language="en_US")
        exchanges = {ex: holidays.financial_holidays(ex, years=year) for ex in EXCHANGES}
        out = {}
        for day in _days(year):
            working = cn.is_working_day(day)
            trading = {ex: day.weekday() < 5 and day not in exchanges[ex] for ex in EXCHANGES}
            out[day] = (working, trading, cn.get(day) or next((exchanges[ex].get(day) for ex in EXCHANGES if day in exchanges[ex]), None))
        return out, version, notes
    if source == "exchange_calendars":
        import warnings  # pylint: disable=import-outside-toplevel
        version = _version_of("exchange_calendars")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import exchange_calendars  # pylint: disable=import-outside-toplevel
            try:
                xshg = exchange_calendars.get_calendar("XSHG", start=f"{year - 1}-12-01", end=f"{year}-12-31")
            except (ValueError, exchange_calendars.errors.DateOutOfBounds) as exc:
                raise CalendarError(f"exchange_calendars {version} has no XSHG data for {year} ({exc}): "
                                    "upgrade it, or draft from another source") from None
            sessions = {s.date() for s in xshg.sessions_in_range(f"{year}-01-01", f"{year}-12-31")}
        notes = [f"exchange_calendars {version} knows XSHG trading days only: working days are drafted as trading days, "
                 "XSHE as XSHG, and make-up working days (调休) are missing: take them from the State Council notice"]
        out = {}
        for day in _days(year):
            trading = day in sessions
            out[day] = (trading, {ex: trading for ex in EXCHANGES}, None if trading or day.weekday() >= 5 else "exchange holiday")
        return out, version, notes
    if source == "chinesecalendar":
        import chinese_calendar  # pylint: disable=import-outside-toplevel
        version = _version_of("chinesecalendar")
        out = {}
        for day in _days(year):
            try:
                working = chinese_calendar.is_workday(day)
                _on, name = chinese_calendar.get_holiday_detail(day)
            except NotImplementedError as exc:
                raise CalendarError(f"chinesecalendar {version} has no data for {year} ({exc}): upgrade it, or draft from another source") from None
            out[day] = (working, {ex: working and day.weekday() < 5 for ex in EXCHANGES}, name)
        notes = [f"chinesecalendar {version} knows working days only: exchange closures on working days are missing"]
        return out, version, notes
    raise CalendarError(f"unknown source {source!r}: use one of {list(SOURCES)}")


def _holidays_official_until():
    """The last year for which the installed `holidays` has the State Council's arrangement."""
    try:
        from holidays.countries.china import ChinaStaticHolidays  # pylint: disable=import-outside-toplevel
        return max(ChinaStaticHolidays.special_public_holidays)
    except (ImportError, AttributeError, ValueError):
        return None


def draft(year, source, now=None):
    """A provisional pack document for ``year`` drafted from ``source``'s data."""
    days, version, notes = source_days(year, source)
    holidays_, makeups, closures = [], [], []
    period = None
    for day in _days(year):
        working, trading, name = days[day]
        if not working:
            named = name if name else None
            if period is None:
                period = {"days": [day], "names": [named] if named else []}
            else:
                period["days"].append(day)
                if named:
                    period["names"].append(named)
            continue
        if period is not None:
            _close_period(period, holidays_)
            period = None
        if day.weekday() >= 5:
            makeups.append({"date": day.isoformat(), "for": _nearest_holiday(day, days)})
        shut = [ex for ex in EXCHANGES if not trading[ex]]
        if shut and day.weekday() < 5:
            closures.append({"date": day.isoformat(), "name": name or "exchange closure", "exchanges": shut})
    if period is not None:
        _close_period(period, holidays_)
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0).isoformat()
    return {
        "schema": PACK_SCHEMA,
        "version": 1,
        "year": year,
        "provisional": True,
        "provenance": {"source": source, "library_version": version, "drafted_at": stamp, "notes": notes},
        "sources": {
            "working_days": {"title": f"{_REVIEW_MARK} 国务院办公厅关于{year}年部分节假日安排的通知",
                             "url": f"{_REVIEW_MARK} the notice's URL on www.gov.cn"},
            "exchanges": {ex: {"title": f"{_REVIEW_MARK} {ex} closure notice for {year}", "url": f"{_REVIEW_MARK} the notice's URL"}
                          for ex in EXCHANGES},
        },
        "holidays": holidays_,
        "makeup_working_days": makeups,
        "exchange_closures": closures,
    }


def _close_period(period, out):
    # A run of days off is a holiday period when a holiday falls in it; a plain weekend is not.
    if not period["names"]:
        return
    name, name_zh = _clean_name(period["names"][0])
    entry = {"name": name}
    if name_zh:
        entry["name_zh"] = name_zh
    entry.update({"from": period["days"][0].isoformat(), "to": period["days"][-1].isoformat()})
    out.append(entry)


def _nearest_holiday(day, days):
    for offset in range(1, 15):
        for other in (day + _dt.timedelta(days=offset), day - _dt.timedelta(days=offset)):
            info = days.get(other)
            if info and not info[0] and info[2]:
                return _clean_name(info[2])[0]
    return "unspecified holiday"


def draft_text(doc):
    notes = "\n".join(f"#   - {n}" for n in doc["provenance"]["notes"]) or "#   (none)"
    head = (f"# DRAFT calendar pack for {doc['year']}, generated from {doc['provenance']['source']} "
            f"{doc['provenance']['library_version']} at {doc['provenance']['drafted_at']}.\n"
            "# It is provisional: compare every holiday period, make-up working day and exchange closure with the\n"
            "# State Council notice and the exchanges' notices, cite them under sources (replace every REVIEW: line),\n"
            "# delete `provisional: true`, then `prodgate calendar sign` it. What the source does not know:\n"
            f"{notes}\n")
    return head + yaml.safe_dump(pack_body(doc), sort_keys=False, allow_unicode=True, width=120)


# --- comparing a draft with a source ---------------------------------------------------------------
def expand(doc, where):
    """{date: (working, {exchange: trading})} for a pack or year document (provisional allowed)."""
    year = doc.get("year")
    if not isinstance(year, int):
        raise CalendarError(f"{where}: has no year")
    data = validate_year(pack_body(doc), year, where)
    return {d: (info.working_day, dict(info.trading)) for d, info in data.days.items()}


def diff(doc, where, against):
    """Days on which ``doc`` and ``against`` (a source name or another file) differ."""
    ours = expand(doc, where)
    year = doc["year"]
    if against in SOURCES:
        theirs_raw, version, notes = source_days(year, against)
        theirs = {d: (v[0], v[1]) for d, v in theirs_raw.items()}
        label = f"{against} {version}"
    else:
        other, _digest = read_pack(against)
        theirs, label, notes = expand(other, against), against, []
    rows = []
    for day in sorted(ours):
        a, b = ours[day], theirs.get(day)
        if b is None:
            continue
        fields = [("working day", a[0], b[0])] + [(f"{ex} trading", a[1][ex], b[1][ex]) for ex in EXCHANGES]
        if against == "exchange_calendars":
            fields = [f for f in fields if f[0] != "working day"]   # it knows trading days only
        if against == "chinesecalendar":
            fields = fields[:1]
        for what, mine, other in fields:
            if mine != other:
                rows.append({"date": day.isoformat(), "weekday": day.strftime("%a"), "field": what, "draft": mine, "source": other})
    return {"draft": where, "against": label, "year": year, "differences": rows, "notes": notes}
