"""The `prodgate` command: keys, approvals, calendar, register, releases.

Each sub-command group lives in its own module in this package and exposes
``register(subparsers)``; groups are discovered here, so adding one needs no edit to this file.
A group's handler returns an exit code. The conventions every group follows (exit codes, list
output, tables, progress) and the helpers that implement them are in :mod:`._output`:

- ``prodgate: error: MESSAGE`` on stderr for every error (and a JSON object on stdout with
  ``--json`` / ``-f json``);
- exit 1 for a refusal or a failed check (:class:`errors.ProdgateError`, an unreadable
  file, a failed verification returned by the handler), including a command beside a
  prodgate.deploy collection of another version (collection_version.py);
- exit 2 for a usage error (argparse: unknown option, missing argument, invalid value);
- a reader that goes away (``prodgate register runs | head -1``) ends the command quietly.
"""
import argparse
import importlib
import json
import os
import pkgutil
import sys

from .. import __version__
from ..collection_version import check_collection_version
from ..errors import ProdgateError
from ._output import EXIT_CLOSED_PIPE, EXIT_FAILED, EXIT_OK, EXIT_USAGE, wants_json


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the command's error line: usage, then ``prodgate: error: ...``, exit 2.

    Sub-command parsers are of the same class (argparse creates them with ``type(parent)``)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"prodgate: error: {message}\n")


def build_parser():
    parser = ArgumentParser(
        prog="prodgate",
        description="Production change governance: signed approvals, freeze windows and the "
                    "tamper-evident change register of the prodgate.deploy collection.",
    )
    parser.add_argument("--version", action="version", version=f"prodgate {__version__}")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def _fail(args, message):
    if wants_json(args):
        print(json.dumps({"ok": False, "error": message}))
    print(f"prodgate: error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _file_problem(exc):
    """An OSError no command caught closer to its cause, as one line naming the file and the fix."""
    where = exc.filename or "a file"
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}: check the path and its permissions"


def _quiet_closed_pipe():
    """The reader went away: write nothing more (the interpreter's final flush included)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_CLOSED_PIPE


def main(argv=None):
    try:
        return _main(argv)
    except BrokenPipeError:
        return _quiet_closed_pipe()
    except KeyboardInterrupt:
        print("prodgate: interrupted", file=sys.stderr)
        return 130


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK if args.group is None else EXIT_USAGE
    try:
        check_collection_version()
        code = int(handler(args) or EXIT_OK)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler of BrokenPipeError
        return code
    except BrokenPipeError:
        raise
    except ProdgateError as exc:
        return _fail(args, str(exc))
    except OSError as exc:
        return _fail(args, _file_problem(exc))
    except UnicodeDecodeError as exc:
        return _fail(args, f"a file given to this command is not text ({exc.reason} at byte {exc.start}): check that "
                           "each path names the file the option asks for")


if __name__ == "__main__":
    sys.exit(main())
