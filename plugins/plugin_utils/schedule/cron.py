# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cron schedules of freeze windows (five fields, names for months and days, Vixie day rule)."""
from ..errors import PolicyError


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
                if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
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
                    if bound.isascii() and bound.isdigit():
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
