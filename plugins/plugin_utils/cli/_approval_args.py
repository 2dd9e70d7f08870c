"""Arguments shared by `prodgate approve` and `prodgate evidence verify`: passphrases and the change."""
import getpass
import os

import yaml

from .. import input_files
from ..governance.approvals import artifact_digest
from ..errors import ProdgateError

CHANGE_FIELDS = ("change_id", "system", "environment", "change_type", "version")


def add_passphrase_flags(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--passphrase-env", metavar="VAR", help="read the key passphrase from this environment variable")
    group.add_argument("--ask-passphrase", action="store_true", help="prompt for the key passphrase")


def read_passphrase(args, confirm=False):
    if getattr(args, "passphrase_env", None):
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise ProdgateError(f"environment variable {args.passphrase_env} is empty or unset; export the passphrase there")
        return value
    if getattr(args, "ask_passphrase", False):
        first = getpass.getpass("key passphrase: ")
        if confirm and getpass.getpass("again: ") != first:
            raise ProdgateError("the two passphrases differ; run the command again")
        return first or None
    return None


def add_change_flags(parser):
    parser.add_argument("--change", metavar="FILE",
                        help="YAML file describing the change (change_id, system, environment, change_type, version, "
                             "artifacts, targets, plan); the flags below override it")
    parser.add_argument("--change-id")
    parser.add_argument("--system")
    parser.add_argument("--environment")
    parser.add_argument("--change-type", help="initial_go_live, version_update, routine, non_routine, maintenance, environment (Art. 25)")
    parser.add_argument("--version", dest="release_version", help="release version")
    parser.add_argument("--artifact", action="append", default=None, metavar="FILE|SHA256", help="release artifact (repeat)")
    parser.add_argument("--target", action="append", default=None, metavar="HOST", help="target host or glob (repeat)")
    parser.add_argument("--plan", metavar="FILE|SHA256", help="the deployment plan document (its sha256 is bound)")


def change_from_args(args):
    """The change binding from --change FILE and the flags."""
    change = {}
    if args.change:
        # Bounded like the evidence (a regular file, 16 MiB, no YAML aliases): input_files.
        fix = "; give a YAML file with change_id, system, environment, change_type"
        text = input_files.read_text(args.change, "change file", ProdgateError, fix=fix)
        change = input_files.parse_yaml(text, f"change file {args.change}", yaml.SafeLoader, ProdgateError, fix=fix) or {}
        if not isinstance(change, dict):
            raise ProdgateError(f"change file {args.change} must be a mapping (change_id, system, ...)")
    for name in CHANGE_FIELDS:
        flag = "release_version" if name == "version" else name
        if getattr(args, flag, None) is not None:
            change[name] = getattr(args, flag)
    if args.artifact is not None:
        change["artifacts"] = args.artifact
    if args.target is not None:
        change["targets"] = args.target
    if args.plan:
        change["plan"] = args.plan
    for name in ("change_id", "system", "environment", "change_type"):
        if not change.get(name):
            raise ProdgateError(f"the change has no {name}: give --{name.replace('_', '-')} or put it in the --change file")
    if change.get("version") is not None:
        change["version"] = str(change["version"])
    change["artifacts"] = [artifact_digest(str(a)) for a in change.get("artifacts") or []]
    change["targets"] = [str(t) for t in change.get("targets") or []]
    plan = change.pop("plan", None) or change.get("plan_digest")
    if plan:
        change["plan_digest"] = artifact_digest(str(plan))
    return change
