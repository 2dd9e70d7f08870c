"""schedule/cron.py: the five-field cron schedule of a freeze window (Vixie semantics). A window that
matches a day it should not freezes a release; one that misses a day lets a change into a freeze."""
import datetime as dt

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import PolicyError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.schedule.cron import CronSpec

WHERE = "policy.yml: freeze_windows[0].cron"


def day(text):
    return dt.date.fromisoformat(text)


# ---- fields -------------------------------------------------------------------------------------

def test_fields_of_a_weekly_window():
    spec = CronSpec("0 20 * * FRI", WHERE)
    assert spec.minutes == {0} and spec.hours == {20}
    assert spec.doms == frozenset(range(1, 32)) and spec.months == frozenset(range(1, 13))
    assert spec.dows == {5}
    assert spec.dom_any and not spec.dow_any
    assert spec.times == [20 * 60]
    assert spec.expr == "0 20 * * FRI"


@pytest.mark.parametrize("expr, field, values", [
    ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
    ("5/20 * * * *", "minutes", {5, 25, 45}),            # a start with a step runs to the end of the range
    ("0 9-17/2 * * *", "hours", {9, 11, 13, 15, 17}),
    ("0 0 1,15,31 * *", "doms", {1, 15, 31}),
    ("0 0 * jan,JUL *", "months", {1, 7}),
    ("0 0 * Mar-may *", "months", {3, 4, 5}),
    ("0 0 * * Mon-Fri", "dows", {1, 2, 3, 4, 5}),
    ("0 0 * * 7", "dows", {0}),                          # 7 and 0 are both Sunday
    ("0 0 * * 5-7", "dows", {5, 6, 0}),
    ("0 0 * * sun,SAT", "dows", {0, 6}),
    ("0 0 * * */2", "dows", {0, 2, 4, 6}),
])
def test_ranges_steps_lists_and_names(expr, field, values):
    assert getattr(CronSpec(expr, WHERE), field) == values


def test_times_are_sorted_minutes_after_midnight():
    assert CronSpec("30,0 20,8 * * *", WHERE).times == [480, 510, 1200, 1230]


# ---- the day rule --------------------------------------------------------------------------------

def test_both_day_fields_restricted_means_either_matches():
    """Vixie cron: '0 0 13 * FRI' is every 13th and every Friday, not only Friday the 13th."""
    spec = CronSpec("0 0 13 * FRI", WHERE)
    assert spec.matches_date(day("2026-03-13"))      # Friday the 13th
    assert spec.matches_date(day("2026-03-06"))      # a Friday
    assert spec.matches_date(day("2026-01-13"))      # a Tuesday, the 13th
    assert not spec.matches_date(day("2026-03-10"))  # a Tuesday, the 10th


def test_only_day_of_week_restricted():
    spec = CronSpec("0 20 * * FRI", WHERE)
    assert spec.matches_date(day("2026-03-06"))
    assert not spec.matches_date(day("2026-03-13") - dt.timedelta(days=1))


def test_only_day_of_month_restricted():
    spec = CronSpec("0 0 1 * *", WHERE)
    assert spec.matches_date(day("2026-03-01"))
    assert not spec.matches_date(day("2026-03-02"))


def test_a_starred_step_counts_as_unrestricted_so_both_must_match():
    """Vixie cron treats a day field beginning with '*' as unrestricted for the either-rule:
    '*/2 ... MON' is a Monday on an odd day of the month, not every odd day and every Monday."""
    spec = CronSpec("0 0 */2 * MON", WHERE)
    assert spec.matches_date(day("2026-03-09"))      # Monday, 9th
    assert not spec.matches_date(day("2026-03-02"))  # Monday, 2nd
    assert not spec.matches_date(day("2026-03-11"))  # Wednesday, 11th


def test_month_restricts_every_day():
    spec = CronSpec("0 0 13 dec FRI", WHERE)
    assert not spec.matches_date(day("2026-11-13"))  # Friday the 13th, but November
    assert spec.matches_date(day("2026-12-04"))      # a Friday in December


# ---- refusals name the field and the window --------------------------------------------------------

@pytest.mark.parametrize("expr", ["0 20 * *", "0 20 * * FRI 2026", "", "@weekly"])
def test_five_fields_are_needed(expr):
    with pytest.raises(PolicyError) as exc:
        CronSpec(expr, WHERE)
    assert str(exc.value) == (f"{WHERE}: {expr!r} needs 5 fields (minute hour day-of-month month day-of-week), "
                              "e.g. '0 20 * * FRI'")


@pytest.mark.parametrize("expr, message", [
    ("60 * * * *", "minute field '60' is out of range 0-59"),
    ("0 24 * * *", "hour field '24' is out of range 0-23"),
    ("0 0 0 * *", "day-of-month field '0' is out of range 1-31"),
    ("0 0 * 13 *", "month field '13' is out of range 1-12"),
    ("0 0 * * 8", "day-of-week field '8' is out of range 0-7"),
    ("0 0 * * FRI-MON", "day-of-week field 'FRI-MON' is out of range 0-7"),
    ("0 0 * * FUNDAY", "'funday' is not valid in the day-of-week field of 'FUNDAY' (allowed 0-7)"),
    ("0 0 * JAN-FRI *", "'fri' is not valid in the month field of 'JAN-FRI' (allowed 1-12)"),
    ("0 0 * * MON,,FRI", "'' is not valid in the day-of-week field"),
    ("*/0 * * * *", "bad step in minute field '*/0'"),
    ("*/x * * * *", "bad step in minute field '*/x'"),
    ("1-2-3 * * * *", "bad range in minute field '1-2-3'"),
    ("-1 * * * *", "'' is not valid in the minute field"),
    ("0 0 ? * *", "'?' is not valid in the day-of-month field"),
])
def test_bad_fields_are_refused_naming_the_field(expr, message):
    with pytest.raises(PolicyError) as exc:
        CronSpec(expr, WHERE)
    assert str(exc.value).startswith(f"{WHERE}: ")
    assert message in str(exc.value)


@pytest.mark.parametrize("expr, field", [("0 ² * * *", "hour"), ("*/² * * * *", "minute"), ("0 0 ¹-5 * *", "day-of-month")])
def test_characters_that_look_like_digits_are_refused_as_policy_errors(expr, field):
    """A superscript digit is not a number: the policy author gets the field named, never a bare
    ValueError out of int() (which `prodgate policy check` and the gate do not catch as a policy error)."""
    with pytest.raises(PolicyError) as exc:
        CronSpec(expr, WHERE)
    assert str(exc.value).startswith(f"{WHERE}: ") and field in str(exc.value)
