"""`prodgate evidence`: what a change needs, what its evidence bundle holds, what is missing and why."""
import getpass
import json

from .. import input_files
from ..governance.approvals import load_evidence
from ..governance.gate import ALL_STAGES, RUN_STAGES, verify_evidence
from ..register.ledger import Ledger
from ..governance.policy import load_policy
from ._approval_args import add_change_flags, change_from_args
from ..errors import ProdgateError
from ._common import EXIT_FAILED, EXIT_OK, add_json_flag, emit, instant_value, table_text


def register(subparsers):
    evidence = subparsers.add_parser("evidence", help="verify or bundle the signed approvals of a change")
    sub = evidence.add_subparsers(dest="evidence_command", metavar="SUBCOMMAND")

    verify = sub.add_parser("verify", help="table of required, present, missing and invalid approvals for a change")
    verify.add_argument("--policy", required=True, help="the signed policy file")
    verify.add_argument("--policy-root", help="pinned governance root (default: keys in the policy, or $PRODGATE_POLICY_ROOT)")
    verify.add_argument("--evidence", required=True, help="evidence folder or JSON bundle")
    add_change_flags(verify)
    verify.add_argument("--implementer", action="append", default=None, help="declared implementer (repeat)")
    verify.add_argument("--supervisor", help="declared supervisor")
    verify.add_argument("--launcher", help="login of who will launch the run (default: the current user)")
    verify.add_argument("--emergency", action="store_true", help="verify as an emergency change")
    verify.add_argument("--ledger", help="ledger file: also report replayed approvals and completed changes")
    verify.add_argument("--at", type=instant_value, help="verify as of this ISO-8601 time (default: now)")
    verify.add_argument("--stage", choices=RUN_STAGES, default=ALL_STAGES,
                        help="how far the run goes, as the gate's stage option: all (default) every required stage; "
                             "trial_run the stages before trial_run, the later ones pending; auto trial_run until "
                             "the trial-run summary is signed, then all")
    add_json_flag(verify)
    verify.set_defaults(handler=verify_cmd)

    bundle = sub.add_parser("bundle", help="put the envelopes of a folder into one JSON file")
    bundle.add_argument("folder")
    bundle.add_argument("--out", required=True)
    add_json_flag(bundle)
    bundle.set_defaults(handler=bundle_cmd)

    export = sub.add_parser("export", help="one file an auditor verifies alone: signed policy, approvals, the change's "
                                           "register entries with Merkle inclusion proofs, the signed checkpoint")
    export.add_argument("change", metavar="CHANGE")
    export.add_argument("--out", required=True, help="the bundle file to write (refused if it exists)")
    export.add_argument("--policy", required=True, help="the signed policy file the change ran under")
    export.add_argument("--evidence", required=True, help="the change's evidence folder or JSON bundle of approvals")
    export.add_argument("--db", help="register (default $PRODGATE_REGISTER_DB or ~/.prodgate/register/register.db)")
    add_json_flag(export)
    export.set_defaults(handler=export_cmd)


def verify_cmd(args):
    at = args.at
    policy = load_policy(args.policy, now=at, root=args.policy_root)
    binding = change_from_args(args)
    binding.update({"implementers": args.implementer or [], "supervisor": args.supervisor,
                    "launcher": args.launcher or getpass.getuser(), "emergency": args.emergency})
    ledger = Ledger(args.ledger) if args.ledger else None
    report = verify_evidence(policy, load_evidence(args.evidence), binding, now=at, ledger=ledger, stage=args.stage)
    data = {"ok": report.ok, "change_id": binding["change_id"], "required_stages": report.required_stages,
            "performed_stage": report.performed_stage, "checked_stages": report.checked_stages,
            "pending_stages": report.pending_stages, "requirements": report.rows, "approvals": [a.as_dict() for a in report.counted],
            "invalid": report.envelope_problems, "problems": report.problems}

    def text():
        lines = [f"change {binding['change_id']}: {binding['system']} {binding['environment']} {binding['change_type']} "
                 f"(policy v{policy.version})", f"required stages: {', '.join(report.required_stages) or '-'}"]
        if report.pending_stages:
            lines.append(f"this run: {report.performed_stage}, checks {', '.join(report.checked_stages)}; "
                         f"pending: {', '.join(report.pending_stages)}")
        lines.append("")
        lines.append(table_text([("STAGE", "stage"), ("ROLE", "role"), ("NEED", "need"),
                                 ("PRESENT", lambda r: ", ".join(r["present"]) or "-", True), ("STATUS", "status")], report.rows))
        if report.envelope_problems:
            lines += ["", "invalid evidence:"] + [f"  - {p}" for p in report.envelope_problems]
        others = [p for p in report.problems if p not in report.envelope_problems]
        if others:
            lines += ["", "missing or refused:"] + [f"  - {p}" for p in others]
        scope = f" up to {report.performed_stage}" if report.pending_stages else ""
        lines += ["", "RESULT: " + (f"complete{scope}, the gate will pass" if report.ok
                                    else f"INCOMPLETE{scope} ({len(report.problems)} problem(s))")]
        return "\n".join(lines)
    emit(args, data, text)
    return EXIT_OK if report.ok else EXIT_FAILED


def bundle_cmd(args):
    envelopes = [{k: v for k, v in e.items() if k != "_source"} for e in load_evidence(args.folder)]
    with input_files.create_file(args.out, "evidence bundle", ProdgateError) as handle:  # never overwritten; a missing folder named
        handle.write(json.dumps({"envelopes": envelopes}, indent=1).encode("utf-8"))
    emit(args, {"file": args.out, "envelopes": len(envelopes)}, f"{len(envelopes)} envelope(s) written to {args.out}")
    return 0


def export_cmd(args):
    import os  # pylint: disable=import-outside-toplevel
    from ..register.evidence import build_bundle  # pylint: disable=import-outside-toplevel
    from ..register.store import open_store, wrap_db_errors  # pylint: disable=import-outside-toplevel
    with wrap_db_errors(open_store)(args.db or os.environ.get("PRODGATE_REGISTER_DB")) as store:
        text, counts = build_bundle(store, args.change, args.policy, load_evidence(args.evidence))
    with open(args.out, "x", encoding="utf-8") as handle:
        handle.write(text)
    emit(args, dict(counts, file=args.out, change_id=args.change),
         f"change {args.change}: {counts['entries']} register entries with inclusion proofs against checkpoint entry "
         f"{counts['checkpoint']}, {counts['approvals']} approval(s) and the signed policy written to {args.out}; "
         f"check it with `prodgate audit verify {args.out} --trusted-key <register public key>`")
    return 0
