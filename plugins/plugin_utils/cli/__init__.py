"""The `prodgate` command: keys, approvals, calendar, register, releases.

Each sub-command group lives in its own module in this package and exposes
``register(subparsers)``; groups are discovered here, so adding one needs no edit to this file.
A group's handler returns an exit code; errors of kind :class:`prodgate.errors.ProdgateError`
print one clear line (or a JSON object with ``--json``) and exit 2; so does a command beside a
prodgate.deploy collection of another version (collection_version.py).
"""
import argparse
import importlib
import json
import pkgutil
import sys

from .. import __version__
from ..collection_version import check_collection_version
from ..errors import ProdgateError


def build_parser():
    parser = argparse.ArgumentParser(
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


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.group is None else 2
    try:
        check_collection_version()
        return int(handler(args) or 0)
    except ProdgateError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": str(exc)}))
        else:
            print(f"prodgate: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
