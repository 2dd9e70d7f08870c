"""`prodgate report`: the static HTML operations picture, and the signed records it shows
(Art. 20(7) MLPS filings, Art. 23-24 failure analyses)."""
import datetime as _dt
import json
import os

from ..governance import dsse
from ..governance.calendar_pack import calendar_for_policy
from ..errors import ProdgateError
from ..schedule.settings import settings_from_policy
from ..governance.policy import load_policy
from ..register.chain import load_public_keys
from ..register.query import RegisterView, load
from ..register.store import open_store, wrap_db_errors
from ..register.witness import append_only, parse_witnesses, read_witness
from ..register.writer import DEFAULT_ANCHOR, DEFAULT_JOURNAL_DIR, DEFAULT_KEY, anchor_path, expand, pending_journals, verify_register, witness_spec
from ..report import model
from ..report.records import KINDS, load_records, make_record, sign_record, verify_records
from ..report.site import build_site
from ._common import add_group, add_json_flag, emit


def _settings():
    try:
        from ..controller import load_settings  # pylint: disable=import-outside-toplevel
        return load_settings()
    except ProdgateError:
        return None


def _pick(value, settings, name, env=None):
    if value:
        return value
    if settings is not None and getattr(settings, name, None):
        return getattr(settings, name)
    return os.environ.get(env) if env else None


def _month(text, where):
    try:
        year, month = (int(x) for x in text.split("-"))
        _dt.date(year, month, 1)
        return year, month
    except (ValueError, TypeError):
        raise ProdgateError(f"{where} {text!r} is not a month: write it as YYYY-MM") from None


def register(subparsers):
    sub = add_group(subparsers, "report", "report_command",
                    help="the change calendar and register report as static HTML; signed records",
                    description="Build the operations picture: a folder of HTML pages that open from the file system "
                                "(no server, no network).")
    p = sub.add_parser("build", help="write the HTML report into a folder")
    p.add_argument("--out", required=True, help="folder to write (created; pages inside are replaced)")
    p.add_argument("--policy", help="the signed policy (default: the controller trust settings' policy)")
    p.add_argument("--policy-root", help="pinned governance root (default: the controller's)")
    p.add_argument("--db", help="change register (default: the controller's, or $PRODGATE_REGISTER_DB)")
    p.add_argument("--evidence", help="evidence root: a folder of change evidence folders (planned changes come from "
                                      "their signed plan submissions)")
    p.add_argument("--records", help="folder of signed records (MLPS filings, failure analyses)")
    p.add_argument("--from", dest="first", help="first month shown, YYYY-MM (default: the first change's month)")
    p.add_argument("--to", dest="last", help="last month shown, YYYY-MM (default: this month or the last change's)")
    p.add_argument("--today", help="the day the report is built for, YYYY-MM-DD (default: today in the policy's zone)")
    p.add_argument("--trusted-key", action="append", help="register public key for the health check (default: the "
                                                          "register signing key's .pub)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_build)

    s = sub.add_parser("sign", help="sign a record: mlps-filing (Art. 20(7)), failure-analysis (Art. 23-24) or "
                                    "evidence (Art. 11, 13-15, 21, 29-30)")
    s.add_argument("kind", choices=["mlps-filing", "failure-analysis", "evidence"])
    s.add_argument("subject", metavar="SYSTEM_OR_CHANGE", help="the system (mlps-filing, evidence) or the change id "
                                                               "(failure-analysis)")
    s.add_argument("--key", required=True, help="your private key (the one in the policy)")
    s.add_argument("--policy", help="the signed policy (default: the controller's): finds who you are from your key")
    s.add_argument("--out", required=True, help="record file to write, in the records folder the report reads")
    s.add_argument("--filed-on", help="mlps-filing: the day the filing was made, YYYY-MM-DD")
    s.add_argument("--reference", help="mlps-filing: the authority's reference number")
    s.add_argument("--cause", help="failure-analysis: what caused the failure")
    s.add_argument("--action", help="failure-analysis: what is done so it does not happen again")
    s.add_argument("--owner", help="failure-analysis: who owns the action")
    s.add_argument("--article", help="evidence: the article it is for (11, 13-15, 21, 29-30)")
    s.add_argument("--evidence", help="evidence: what the evidence is and where it is kept")
    add_json_flag(s)
    s.set_defaults(handler=cmd_sign)


def _health(store, settings, trusted_paths):
    key = expand(_pick(None, settings, "register_signing_key", "PRODGATE_REGISTER_SIGNING_KEY") or DEFAULT_KEY)
    paths = list(trusted_paths or []) or [p for p in (key + ".pub", key) if os.path.exists(p)][:1]
    trusted = load_public_keys(paths) if paths else None
    template = _pick(None, settings, "register_anchor", "PRODGATE_REGISTER_ANCHOR") or DEFAULT_ANCHOR
    register_id = store.register_id()
    anchor = anchor_path(template, register_id)
    spec = _pick(None, settings, "register_witness") or witness_spec(template)
    witnesses = parse_witnesses(spec, register_id)
    report = wrap_db_errors(verify_register)(store, trusted_keys=trusted, anchor_paths=[anchor], witnesses=witnesses)
    status = []
    for kind, where in witnesses:
        if kind == "file":
            entries = read_witness(where)
            status.append({"kind": kind, "where": where, "checkpoints": len(entries),
                           "latest_seq": entries[-1][1].get("seq") if entries else None, "append_only": append_only(where)})
        else:
            status.append({"kind": kind, "where": f"syslog ({where})"})
    unanchored = []
    if not os.path.exists(anchor) and not any(w.get("checkpoints") for w in status):
        unanchored.append("no anchor and no witness holds a checkpoint")
    if not trusted:
        unanchored.append("no trusted register key")
    report["unanchored"] = unanchored
    report["checked"] = {"witness": any(w.get("checkpoints") for w in status)}
    if unanchored:
        report["ok"] = False
    journal_dir = _pick(None, settings, "register_journal_dir", "PRODGATE_REGISTER_JOURNAL_DIR") or DEFAULT_JOURNAL_DIR
    return report, status, pending_journals(journal_dir, register_id)


def cmd_build(args):
    settings = _settings()
    policy_path = _pick(args.policy, settings, "policy", "PRODGATE_POLICY")
    if not policy_path:
        raise ProdgateError("no policy: pass --policy FILE (the signed policy) or set up the controller trust settings")
    root = _pick(args.policy_root, settings, "policy_root")
    today_hint = _dt.date.fromisoformat(args.today) if args.today else None
    now = _dt.datetime.now(_dt.timezone.utc)
    policy = load_policy(policy_path, now=now, root=root)
    cal = calendar_for_policy(policy.raw, policy.path, root)
    tz = settings_from_policy(policy.raw, policy.path).tz
    today = today_hint or now.astimezone(tz).date()
    db = _pick(args.db, settings, "register_db", "PRODGATE_REGISTER_DB")
    view = store = verify_report = None
    witnesses, journals = [], []
    if db or os.path.exists(expand("~/.prodgate/register/register.db")):
        store = wrap_db_errors(open_store)(db)
        if store.schema_version() == 0:
            store.close()
            store = None
    try:
        if store is not None:
            view = RegisterView(load(store))
            verify_report, witnesses, journals = _health(store, settings, args.trusted_key)
        envelopes = model.load_envelopes(args.evidence)
        records, problems = verify_records(policy, load_records(args.records))
        days = [c for c in (model.executed_changes(view, tz) if view else []) if c["day"]]
        first = _month(args.first, "--from") if args.first else \
            min([(c["day"].year, c["day"].month) for c in days] + [(today.year, today.month)])
        last = _month(args.last, "--to") if args.last else \
            max([(c["day"].year, c["day"].month) for c in days] + [(today.year, today.month)])
        if first > last:
            raise ProdgateError(f"--from {first[0]}-{first[1]:02d} is after --to {last[0]}-{last[1]:02d}")
        months = model.months_between(first, last)
        if len(months) > 36:
            raise ProdgateError(f"{len(months)} months asked for: show at most 36 (--from, --to)")
        written = build_site(args.out, policy, cal, view, tz, today, months, envelopes=envelopes, records=records,
                             record_problems=problems, verify_report=verify_report, witnesses=witnesses,
                             journals=journals, store=store)
    finally:
        if store is not None:
            store.close()
    index = os.path.abspath(os.path.join(args.out, "index.html"))
    emit(args, {"ok": True, "index": index, "pages": len(written), "months": [f"{y}-{m:02d}" for y, m in months],
                "record_problems": problems},
         f"report: {len(written)} pages for {months[0][0]}-{months[0][1]:02d}..{months[-1][0]}-{months[-1][1]:02d}; "
         f"open file://{index}")
    return 0


def cmd_sign(args):
    settings = _settings()
    policy_path = _pick(args.policy, settings, "policy", "PRODGATE_POLICY")
    if not policy_path:
        raise ProdgateError("no policy: pass --policy FILE so the record can name who signs it")
    policy = load_policy(policy_path, root=_pick(None, settings, "policy_root"))
    key = dsse.load_private_key(args.key)
    keyid = dsse.keyid_of(dsse.public_key_hex(key.public_key()))
    pk = policy.keys.get(keyid)
    if pk is None or pk.revoked:
        raise ProdgateError(f"key {args.key} (id {keyid[:16]}) is not a current key of anyone in policy {policy_path}")
    kind = args.kind.replace("-", "_")
    if kind == "mlps_filing":
        if args.filed_on:
            _dt.date.fromisoformat(args.filed_on)
        fields = {"system": args.subject, "filed_on": args.filed_on, "reference": args.reference}
        if args.subject not in policy.systems:
            raise ProdgateError(f"system {args.subject!r} is not in the policy's catalogue: one of {', '.join(policy.systems)}")
    elif kind == "evidence":
        articles = [a for a, _r in model.EVIDENCE_CHECKLIST]
        if args.article not in articles:
            raise ProdgateError(f"--article {args.article!r}: evidence is recorded for one of {', '.join(articles)}")
        if args.subject not in policy.systems:
            raise ProdgateError(f"system {args.subject!r} is not in the policy's catalogue: one of {', '.join(policy.systems)}")
        fields = {"system": args.subject, "article": args.article, "evidence": args.evidence}
    else:
        fields = {"change_id": args.subject, "cause": args.cause, "action": args.action, "owner": args.owner}
    roles = KINDS[kind][1]
    held = (policy.people.get(pk.person) or {}).get("roles") or []
    if roles and not set(roles) & set(held):
        raise ProdgateError(f"a {args.kind} is signed by the {' or '.join(roles)} (Art. 23-24); {pk.person} holds "
                            f"{', '.join(held)}")
    envelope = sign_record(make_record(kind, pk.person, fields), key)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "x", encoding="utf-8") as fh:
        json.dump(envelope, fh, indent=1)
    emit(args, {"ok": True, "file": args.out, "kind": kind, "person": pk.person},
         f"{args.kind} of {args.subject} signed by {pk.person}: {args.out}")
    return 0
