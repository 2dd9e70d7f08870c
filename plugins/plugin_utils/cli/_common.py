"""Helpers shared by the CLI groups: the --json flag, output, and the command's conventions.

Every group (calendar, report, audit, ... and new ones) follows the conventions of
:mod:`._output`, re-exported here:

- errors: raise :class:`errors.ProdgateError` for a refusal (main() prints
  ``prodgate: error: MESSAGE`` and exits 1); return ``EXIT_FAILED`` (1) after printing a failed
  check; invalid option values are usage errors (exit 2): validate them with ``type=``
  functions (``limit_value``, ``time_value``, ``instant_value``, ``choice_list``) so argparse
  reports them;
- list output: ``add_list_flags(parser)`` (``-f table|json|csv|yaml``, ``--json``, ``--limit``,
  default 50) and ``output_rows(args, rows, columns)`` (header row, limit, format);
- tables that are not lists: ``table_text(columns, rows)`` (rich, plain text);
- long work: ``with progress("doing X", total=n) as advance:`` or ``track(iterable, "doing X")``
  (a progress bar on a terminal, nothing when stderr is piped).
"""
import json

from ._output import (
    EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_list_flags, choice_list, instant_value, limit_value, output_rows, progress, table_text, time_value, track,
    wants_json
)

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_group", "add_json_flag", "add_list_flags", "choice_list", "emit",
           "instant_value", "limit_value", "output_rows", "progress", "table_text", "time_value", "track", "wants_json"]


def add_group(subparsers, name, dest, **kwargs):
    """The sub-command parsers of a new command group ``name``: named without a sub-command, the group
    prints its own help and exits 2 (usage)."""
    group = subparsers.add_parser(name, **kwargs)
    group.set_defaults(handler=lambda _args: group.print_help() or EXIT_USAGE)
    return group.add_subparsers(dest=dest, metavar="SUBCOMMAND")


def add_json_flag(parser):
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def emit(args, data, text):
    """Print ``data`` as JSON when --json was given, else the human text (a str or callable)."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text() if callable(text) else text)
