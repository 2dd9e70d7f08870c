"""How every `prodgate` command prints: exit codes, list output, tables and progress.

Use these in every command group (new groups too) so that the whole command follows one set
of conventions, the ones of git, ansible-galaxy and ara:

Exit codes (:func:`cli.main` maps them; handlers return EXIT_OK or EXIT_FAILED)
    ``EXIT_OK`` (0) success; ``EXIT_FAILED`` (1) a refusal or a failed check: raise
    :class:`errors.ProdgateError` (main prints ``prodgate: error: MESSAGE`` on stderr)
    or return 1 after printing the failed verdict (``policy check``, ``evidence verify``,
    ``register verify``); ``EXIT_USAGE`` (2) a usage error: argparse reports it, so validate
    option values with ``type=`` functions that raise :class:`argparse.ArgumentTypeError`
    (see :func:`limit_value`, :func:`time_value`, :func:`instant_value`, :func:`choice_list`).
    A closed pipe ends quietly.

List output (``register runs``, ``register changes``, any command printing rows)
    :func:`add_list_flags` gives the parser ``-f/--format table|json|csv|yaml``, ``--json``
    (an alias of ``-f json``) and ``--limit N`` (default 50, 0 for all); :func:`output_rows`
    prints the rows with a header row in the chosen format, keeping the last ``--limit`` rows.

Tables that are not lists (a verdict's table in ``evidence verify``)
    :func:`table_text` renders a header and rows with rich, as plain text.

Progress (long work: ``register verify``, ``register export``, reports)
    ``with progress("verifying register", total=n) as advance: ... advance(k)`` or
    ``for x in track(iterable, "reading", total=n)``: a rich progress bar on stderr when stderr
    is a terminal, nothing at all (and no cost) when it is piped or redirected.
"""
import argparse
import collections
import csv
import datetime as dt
import io
import json
import os
import sys

import yaml

# rich is imported where it draws, so that a command which prints no table starts fast.
# pylint: disable=import-outside-toplevel
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, what git and the shell report for a reader that went away

FORMATS = ("table", "json", "csv", "yaml")
DEFAULT_LIMIT = 50


# ---- option values: invalid ones are usage errors (exit 2) ----------------------------------

def limit_value(text):
    """``--limit``: a whole number >= 0 (0 means no limit)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count: give a whole number >= 0 (0 shows all)")
    return value


def time_value(text):
    """A date or date-time in ISO 8601 (UTC unless it carries an offset), normalised to the
    register's UTC form (``2026-01-31`` or ``2026-01-31T08:00:00``) so that it compares with the
    entries' timestamps."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time: write ISO 8601, e.g. 2026-01-31 or 2026-01-31T08:00 (UTC) "
            "or 2026-01-31T16:00+08:00") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        except OverflowError:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: give a time between the years 1 and 9999 in UTC") from None
    elif len(text.strip()) == 10:
        return parsed.date().isoformat()
    return parsed.isoformat(timespec="seconds")


def instant_value(text):
    """An instant with its UTC offset (``--at``, ``--not-before``), parsed by the core's
    :func:`base.parse_time`; its refusal becomes a usage error."""
    from ..base import parse_time
    try:
        return parse_time(text, "")
    except ValueError as exc:  # the core's InputError is a ValueError too
        raise argparse.ArgumentTypeError(str(exc).removeprefix(": ")) from None


def choice_list(allowed, what="value"):
    """A ``type=`` for a comma-separated list whose items must be in ``allowed``."""
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        bad = [item for item in items if item not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"{', '.join(map(repr, bad)) or repr(text)} is not a known {what}: use one or more of "
                f"{', '.join(allowed)}, separated by commas")
        return ",".join(items)
    return parse


# ---- list output ----------------------------------------------------------------------------

def add_list_flags(parser, default_limit=DEFAULT_LIMIT):
    """``-f/--format``, ``--json`` (alias of ``-f json``) and ``--limit`` for a list command."""
    parser.add_argument("-f", "--format", dest="output_format", choices=FORMATS, default="table",
                        help="output format (default table; json, csv and yaml carry every field)")
    parser.add_argument("--json", dest="output_format", action="store_const", const="json",
                        help="same as -f json")
    parser.add_argument("--limit", type=limit_value, default=default_limit, metavar="N",
                        help=f"show the last N rows (default {default_limit}; 0 shows all)")


def wants_json(args):
    """Whether the user asked for JSON (``--json`` or ``-f json``): errors are then also JSON."""
    return bool(getattr(args, "json", False)) or getattr(args, "output_format", None) == "json"


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _console(**kwargs):
    from rich.console import Console
    return Console(highlight=False, emoji=False, **kwargs)


def _plain_console(file):
    return _console(file=file, markup=False, width=100_000, force_terminal=False, color_system=None, soft_wrap=False)


def _table(columns, rows, header_style=None):
    """A rich table. On a terminal narrower than the table only the columns marked to fold (a
    third element ``True``: task names, paths) fold; ids, times and states keep their width."""
    from rich.table import Table
    cells = [[_cell(column[1](row) if callable(column[1]) else row.get(column[1])) for column in columns] for row in rows]
    table = Table(box=None, pad_edge=False, show_edge=False, header_style=header_style, highlight=False)
    for index, column in enumerate(columns):
        if len(column) > 2 and column[2]:
            table.add_column(column[0], overflow="fold")
        else:
            width = max([len(column[0])] + [len(row[index]) for row in cells])
            table.add_column(column[0], no_wrap=True, overflow="ignore", min_width=width)
    for row in cells:
        table.add_row(*row)
    return table


def table_text(columns, rows):
    """Plain-text table (header row, columns two spaces apart, no trailing blanks).

    ``columns`` is a list of ``(HEADER, key)`` or ``(HEADER, callable(row) -> value)``, with a
    third element ``True`` for a text column that may fold on a narrow terminal."""
    buf = io.StringIO()
    _plain_console(buf).print(_table(columns, rows))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def output_rows(args, rows, columns, fields=None, what="rows"):
    """Print ``rows`` (dicts) in ``args.output_format`` keeping the last ``args.limit`` of them.

    ``columns`` (see :func:`table_text`) are the table's; json, yaml and csv carry every field
    of each row (csv: ``fields``, default the keys of the rows in first-seen order), so a script
    gets what the table leaves out. A note on stderr says when rows were left out."""
    limit = getattr(args, "limit", 0) or 0
    if limit:
        # rows may be a stream (the change register's queries): keep only the last ``limit``
        kept, total = collections.deque(maxlen=limit), 0
        for row in rows:
            kept.append(row)
            total += 1
        rows = list(kept)
    else:
        rows = list(rows)
        total = len(rows)
    fmt = getattr(args, "output_format", "table") or "table"
    out = sys.stdout
    if fmt == "json":
        out.write(json.dumps(rows, indent=2, sort_keys=True, default=str) + "\n")
    elif fmt == "yaml":
        out.write(yaml.safe_dump(json.loads(json.dumps(rows, default=str)), sort_keys=False,
                                 default_flow_style=False, allow_unicode=True) if rows else "[]\n")
    elif fmt == "csv":
        if fields is None:
            fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow([_cell(row.get(f)) for f in fields])
    elif out.isatty():
        _console(file=out, markup=False).print(_table(columns, rows, header_style="bold"))
    else:
        out.write(table_text(columns, rows) + "\n")
    out.flush()
    if total > len(rows):
        print(f"prodgate: showing the last {len(rows)} of {total} {what}; --limit 0 shows all", file=sys.stderr)
    elif not total and fmt == "table":
        print(f"prodgate: no {what}", file=sys.stderr)


# ---- progress -------------------------------------------------------------------------------

def stderr_is_terminal():
    try:
        return os.isatty(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _noop(_count=1):
    return None


class _ProgressDisplay:
    """The context manager :func:`progress` returns (a class, so that generators may hold it)."""

    def __init__(self, description, total):
        self.description, self.total = description, total
        self._display = None

    def __enter__(self):
        if not stderr_is_terminal():
            return _noop
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if self.total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        display = Progress(*columns, console=_console(file=sys.stderr, force_terminal=True), transient=True,
                           refresh_per_second=4)
        display.start()
        self._display = display
        task = display.add_task(self.description, total=self.total)

        def advance(count=1):
            display.advance(task, count)
        return advance

    def __exit__(self, *exc):
        if self._display is not None:
            self._display.stop()
            self._display = None
        return False


def progress(description, total=None):
    """A context manager yielding ``advance(count=1)``. On a terminal (stderr) a progress bar (a
    spinner when ``total`` is None) is drawn on stderr and cleared at the end; piped or
    redirected, nothing is drawn."""
    return _ProgressDisplay(description, total)


def track(iterable, description, total=None, every=1000):
    """Iterate ``iterable`` with a progress display on a terminal (advanced every ``every`` items,
    so a fast loop stays fast); piped or redirected, the iterable is returned unchanged."""
    if not stderr_is_terminal():
        return iterable
    return _tracked(iterable, description, total, every)


def _tracked(iterable, description, total, every):
    with progress(description, total) as advance:
        count = 0
        for item in iterable:
            count += 1
            if count == every:
                advance(count)
                count = 0
            yield item
        advance(count)
