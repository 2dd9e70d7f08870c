# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The freeze schedule of one target and its decision at an instant (deny wins; allow windows confine)."""
import bisect
import datetime as _dt

from ..base import INF, aware, fmt_instant
from ..errors import CalendarError
from .calendar import default_calendar
from .settings import CalendarSettings

_LOOKAHEAD_DAYS = 400


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
        ts = when if isinstance(when, (int, float)) else aware(when).timestamp()
        chunk = self._chunk(ts)
        return chunk[3][bisect.bisect_right(chunk[2], ts) - 1]

    def is_open(self, when):
        return self.status_at(when).open

    def segments(self, start, end):
        """Merged segments covering [start, end) (aware datetimes), clipped to the range."""
        a, b = aware(start).timestamp(), aware(end).timestamp()
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
        at = aware(when)
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
        return None if ts is None or ts in (INF, -INF) else _dt.datetime.fromtimestamp(ts, self.settings.tz).isoformat()

    def message(self):
        tz = self.settings.timezone_name
        if self.open:
            tail = f" until {fmt_instant(self.open_until, self.settings.tz)} {tz}" if self.open_until else ""
            return f"open ({self.segment.reason()}){tail}"
        until = f"{fmt_instant(self.until, self.settings.tz)} {tz}" if self.until not in (None, INF) else "unknown"
        nxt = f"{fmt_instant(self.next_open, self.settings.tz)} {tz}" if self.next_open is not None else "unknown"
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
