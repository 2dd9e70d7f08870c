"""`prodgate policy`: check and sign the policy file (governance keys, threshold, expiry)."""
import os
import tempfile

from .. import input_files
from ..governance import dsse
from ..errors import PolicyError
from ..base import parse_time, utcnow
from ..governance.policy import build_policy, dump_document, load_root, read_policy_document, sign_document, verify_signatures
from ..governance.policy_schema import effective_rules, validate_document
from ._approval_args import add_passphrase_flags, read_passphrase
from ._common import EXIT_FAILED, EXIT_OK, add_json_flag, emit, instant_value


def register(subparsers):
    policy = subparsers.add_parser("policy", help="check or sign the approvals policy")
    sub = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")

    check = sub.add_parser("check", help="validate the schema, the governance signatures and the expiry "
                                         "(exit 0 OK, 1 not OK)")
    check.add_argument("policy")
    check.add_argument("--root", help="pinned governance root file (default: the policy's governance keys, or $PRODGATE_POLICY_ROOT)")
    check.add_argument("--at", type=instant_value, help="check as of this ISO-8601 time (default: now)")
    check.add_argument("--effective", action="store_true", help="also print the effective approval rules (defaults + overrides)")
    add_json_flag(check)
    check.set_defaults(handler=check_cmd)

    sign = sub.add_parser("sign", help="add your governance signature to the policy (in place, or to --out)")
    sign.add_argument("policy")
    sign.add_argument("--key", required=True, help="governance private key")
    sign.add_argument("--out", help="write the signed policy here instead of in place (a new file, unless --force)")
    sign.add_argument("--force", action="store_true", help="let --out replace an existing file")
    add_passphrase_flags(sign)
    add_json_flag(sign)
    sign.set_defaults(handler=sign_cmd)


def check_cmd(args):
    now = args.at or utcnow()
    doc = read_policy_document(args.policy)
    problems = [f"{args.policy}: {p}" for p in validate_document(doc)]
    signed_by = []
    root = args.root or os.environ.get("PRODGATE_POLICY_ROOT")
    try:
        governance = load_root(root) if root else doc.get("governance")
        if isinstance(governance, dict) and isinstance(governance.get("keys"), list):
            signed_by = verify_signatures(doc, governance, args.policy)
    except PolicyError as exc:
        problems.append(str(exc))
    summary = {"ok": not problems, "policy": args.policy, "version": doc.get("version"), "expires": doc.get("expires"),
               "signed_by": signed_by, "pinned_root": root, "problems": problems}
    if not problems:
        expires = parse_time(doc["expires"], "expires")
        if now >= expires:
            problems.append(f"policy {args.policy} expired at {doc['expires']}; issue a new version with a later expires and sign it")
        else:
            pol = build_policy(doc, args.policy, signed_by)
            summary.update({"systems": sorted(pol.systems), "people": len(pol.people), "days_left": (expires - now).days})
    summary["ok"] = not problems
    if args.effective:
        summary["effective_rules"] = effective_rules(doc)

    def text():
        if problems:
            return "\n".join([f"policy {args.policy}: NOT OK ({len(problems)} problem(s))"] + [f"  - {p}" for p in problems])
        lines = [f"policy {args.policy}: OK, version {doc['version']}, expires {doc['expires']} ({summary['days_left']} days left)",
                 f"signed by {len(signed_by)} governance key(s): {', '.join(k[:16] for k in signed_by)}"
                 + ("" if root else " (governance keys from the policy itself; pin them with --root)"),
                 f"systems: {', '.join(summary['systems'])}; people: {summary['people']}"]
        if args.effective:
            import yaml  # pylint: disable=import-outside-toplevel
            lines.append(yaml.safe_dump(summary["effective_rules"], sort_keys=False, width=140))
        return "\n".join(lines)
    emit(args, summary, text)
    return EXIT_OK if not problems else EXIT_FAILED  # a failed check, like `evidence verify`


def sign_cmd(args):
    if args.out and os.path.abspath(args.out) != os.path.abspath(args.policy):
        input_files.check_output(args.out, "signed policy", PolicyError, force=args.force)
    doc = read_policy_document(args.policy)
    problems = validate_document(doc)
    if problems:
        raise PolicyError(f"refusing to sign {args.policy}, it is invalid: " + " | ".join(problems))
    key = dsse.load_private_key(args.key, read_passphrase(args))
    keyid = dsse.keyid_of(dsse.public_key_hex(key.public_key()))
    gov_ids = {dsse.keyid_of(k["public_key"]) for k in doc["governance"]["keys"]}
    if keyid not in gov_ids:
        raise PolicyError(f"key {keyid[:16]} is not one of the policy's governance keys; sign with a governance key "
                          "or add its public key under governance.keys")
    sign_document(doc, key)
    out = args.out or args.policy
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".policy-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(dump_document(doc))
    os.replace(tmp, out)
    count = len(doc["signatures"])
    emit(args, {"policy": out, "keyid": keyid, "signatures": count, "threshold": doc["governance"]["threshold"]},
         f"signed {out} with governance key {keyid[:16]} ({count} signature(s), threshold {doc['governance']['threshold']})")
    return 0
