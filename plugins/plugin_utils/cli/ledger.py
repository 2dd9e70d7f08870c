"""`prodgate ledger import`: migrate a single-use ledger of the old schema into the change register.

Before issue 11 the gate kept consumed approvals in a SQLite file of its own (tables
``consumed_nonce`` and ``completed_change``). The gate now refuses such a file as its register,
naming this command: it copies the consumed nonces and completed changes into the change register
(one transaction, recorded on the register's chain as a ``ledger_import`` entry), so that none of
those approvals can pass again.
"""
import os

from ..controller import load_settings
from ..register.ledger import Ledger, import_legacy_ledger
from ._common import add_group, add_json_flag, emit


def register(subparsers):
    sub = add_group(subparsers, "ledger", "ledger_command",
                    help="the single-use ledger of consumed approvals (kept in the change register)")
    imp = sub.add_parser("import", help="copy a ledger file of the old schema into the change register")
    imp.add_argument("old", metavar="OLD_LEDGER", help="the old ledger file (e.g. ~/.local/state/prodgate/ledger.sqlite)")
    imp.add_argument("--db", help="the change register: a SQLite path or a postgresql:// URL (default "
                                  "$PRODGATE_REGISTER_DB, else register.db of the controller trust settings)")
    add_json_flag(imp)
    imp.set_defaults(handler=import_cmd)


def import_cmd(args):
    url = args.db or os.environ.get("PRODGATE_REGISTER_DB") or load_settings(os.environ).require("register_db")
    with Ledger.open(url) as ledger:
        data = import_legacy_ledger(ledger, os.path.expanduser(args.old))
    emit(args, dict(data, ok=True),
         f"imported {data['nonces']} consumed approval(s) and {data['completed']} completed change(s) from "
         f"{data['source']} into the change register {data['register']} ({data['already_there']} already there)")
    return 0
