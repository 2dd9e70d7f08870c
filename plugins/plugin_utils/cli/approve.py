"""`prodgate approve`: sign one stage of one change (one DSSE envelope, Art. 16-20, 27)."""
import argparse
import json
import os
from datetime import datetime, timedelta

from ..governance import approvals, dsse
from ..errors import ProdgateError
from ..governance.policy import load_policy
from ..governance.policy_schema import RETROSPECTIVE_STAGE
from ._approval_args import add_change_flags, add_passphrase_flags, change_from_args, read_passphrase
from ._common import add_json_flag, emit, instant_value


# Ten years: longer is a typo, and a huge number overflows datetime (issue 11, Deliver 9).
MAX_VALID_HOURS = 87_600


def _valid_hours(text):
    try:
        hours = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number of hours") from None
    if hours < 1:
        raise argparse.ArgumentTypeError(f"{hours} hours: an approval must be valid for at least 1 hour")
    if hours > MAX_VALID_HOURS:
        raise argparse.ArgumentTypeError(f"{text[:40]} hours is too large: an approval is valid for at most "
                                         f"{MAX_VALID_HOURS} hours (10 years); give --not-after instead")
    return hours


def register(subparsers):
    parser = subparsers.add_parser("approve", help="sign one stage of one change (writes a DSSE envelope)")
    parser.add_argument("--key", required=True, help="your private key (from `prodgate keys generate`)")
    parser.add_argument("--person", required=True, help="your person id in the policy")
    parser.add_argument("--role", required=True, help="the role you sign as (e.g. risk_compliance)")
    parser.add_argument("--stage", required=True,
                        help="plan_submission, coo_approval, internal_review, trial_run, go_live, change_approval, "
                             "implementer_ack, supervisor_ack, emergency_override, retrospective_approval (after a "
                             "break-glass change)")
    add_change_flags(parser)
    parser.add_argument("--not-before", type=instant_value, help="start of validity, ISO-8601 with offset (default: now)")
    parser.add_argument("--not-after", type=instant_value, help="end of validity, ISO-8601 with offset (default: --valid-hours after not-before)")
    parser.add_argument("--valid-hours", type=_valid_hours, default=72,
                        help=f"validity when --not-after is not given (default 72, at most {MAX_VALID_HOURS})")
    parser.add_argument("--reason", help="why (mandatory for emergency_override)")
    parser.add_argument("--planned-start", type=instant_value, help="planned start of the installation, ISO-8601 with offset (plan_submission, Art. 17)")
    parser.add_argument("--reject", action="store_true", help="sign a rejection instead of an approval")
    parser.add_argument("--policy", help="check the role, stage and key against this signed policy before signing")
    parser.add_argument("--out", required=True, metavar="DIR|FILE", help="evidence folder (a file is created in it) or file to write")
    add_passphrase_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=approve)


def approve(args):
    change = change_from_args(args)
    key = dsse.load_private_key(args.key, read_passphrase(args))
    keyid = dsse.keyid_of(dsse.public_key_hex(key.public_key()))
    if args.policy:
        pol = load_policy(args.policy)
        pol.system(change["system"])  # an unknown system is refused here as by the gates
        owner = pol.keys.get(keyid)
        if owner is None or owner.person != args.person:
            raise ProdgateError(f"key {keyid[:16]} is not a key of {args.person} in {args.policy}; use your own key or have it added to the policy")
        if args.role not in pol.people[args.person].get("roles", []):
            raise ProdgateError(f"{args.person} does not hold role {args.role} in {args.policy}")
        known = args.stage in pol.rules["stages"] or (args.stage == RETROSPECTIVE_STAGE and pol.raw.get("break_glass"))
        if not known or args.role not in pol.stage_roles(args.stage):
            raise ProdgateError(f"role {args.role} does not sign stage {args.stage} under {args.policy}")
    if args.stage == "emergency_override" and not (args.reason or "").strip():
        raise ProdgateError("an emergency_override needs --reason")
    now = datetime.now().astimezone().replace(microsecond=0)
    not_before = args.not_before or now
    not_after = args.not_after or not_before + timedelta(hours=args.valid_hours)
    if not_after <= not_before:
        raise ProdgateError("--not-after must be later than --not-before")
    planned = args.planned_start
    statement = approvals.make_statement(change, args.stage, args.role, args.person, not_before, not_after, issued_at=now,
                                         reason=args.reason, planned_start=planned,
                                         decision="reject" if args.reject else "approve")
    envelope = approvals.sign_statement(statement, key)
    nonce = statement["predicate"]["nonce"]
    out = args.out
    if os.path.isdir(out) or out.endswith(os.sep):
        os.makedirs(out, exist_ok=True)
        out = os.path.join(out, f"{change['change_id']}.{args.stage}.{args.person}.{nonce[:8]}.json")
    try:
        with open(out, "x", encoding="utf-8") as handle:
            json.dump(envelope, handle, indent=2)
            handle.write("\n")
    except FileExistsError:
        raise ProdgateError(f"{out} already exists: approvals are never overwritten; give --out a folder or a new file") from None
    except OSError as exc:
        raise ProdgateError(f"cannot write the approval to {out} ({exc.strerror}): give --out a writable folder or file") from None
    data = {"file": out, "keyid": keyid, "nonce": nonce, "stage": args.stage, "role": args.role, "person": args.person,
            "change_id": change["change_id"], "not_before": not_before.isoformat(), "not_after": not_after.isoformat()}
    emit(args, data, f"{'rejection' if args.reject else 'approval'} of {args.stage} for {change['change_id']} by {args.person} "
                     f"as {args.role} written to {out} (valid {data['not_before']} .. {data['not_after']})")
    return 0
