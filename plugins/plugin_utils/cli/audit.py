"""`prodgate audit verify FILE --trusted-key KEY`: check an exported evidence bundle offline (issue 13)."""
from ..errors import ProdgateError
from ..register.evidence import verify_bundle
from ..register.chain import load_public_keys
from ._common import add_group, add_json_flag, emit


def register(subparsers):
    sub = add_group(subparsers, "audit", "audit_command", help="check exported evidence offline, without the register",
                    description="For an auditor: everything is checked from the file and the public key.")
    p = sub.add_parser("verify", help="verify a bundle written by `prodgate evidence export` (exit 0 verified, 1 not)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--trusted-key", action="append", required=True,
                   help="the register's checkpoint public key (.pub), obtained from its owner; repeatable")
    p.add_argument("--policy-root", help="pinned governance root to check the policy against (default: the "
                                         "governance keys listed in the policy itself)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_verify)


def cmd_verify(args):
    try:
        with open(args.file, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ProdgateError(f"evidence file {args.file} cannot be read: {exc.strerror}; give the file written by "
                            "`prodgate evidence export`") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        text = None
        report = {"ok": False, "problems": [f"line {line}: not UTF-8 text at byte {exc.start}: the file was altered"]}
    if text is not None:
        report = verify_bundle(text, load_public_keys(args.trusted_key), policy_root=args.policy_root)
    report["file"] = args.file

    def out():
        if report["ok"]:
            cp = report["checkpoint"]
            return (f"VERIFIED: change {report['change_id']}: {report['entries']} register entries proven in the register "
                    f"signed at checkpoint entry {cp['seq']} ({cp['count']} entries, key {cp['key_id']}); "
                    f"{len(report['approvals'])} signed approval(s); policy v{report['policy']['version']} signed by "
                    f"{len(report['policy']['signed_by'])} governance key(s)")
        return "NOT VERIFIED:\n" + "\n".join(f"  - {p}" for p in report["problems"])
    emit(args, report, out)
    return 0 if report["ok"] else 1
