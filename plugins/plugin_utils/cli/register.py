"""`prodgate register ...`: query, verify and export the production change register (Art. 22(5), 27)."""
import contextlib
import json
import os
import sys
import time

from . import _register_audit
from ._common import add_group, add_json_flag, add_list_flags, choice_list, emit, output_rows, progress, table_text, time_value, track
from ..errors import RegisterError
from ..register.audit import gate_status
from ..register.chain import generate_key, key_id, load_public_keys, public_key_b64, load_key
from ..register.query import (
    CHANGE_COLUMNS, RegisterView, change_form, change_view, iter_entries, list_runs, load, select_changes, show_run, system_archive, write_csv,
    write_markdown
)
from ..register.store import open_store, redact_url, wrap_db_errors
from ..report.form import document as form_document, to_markdown as form_document_markdown
from ..register.witness import append_only, parse_witnesses, read_witness
from ..register.writer import (
    DEFAULT_ANCHOR, DEFAULT_JOURNAL_DIR, DEFAULT_KEY, RegisterWriter, anchor_path, expand, import_journal, pending_journals, verify_register,
    witness_spec
)


def _db(args):
    return args.db or os.environ.get("PRODGATE_REGISTER_DB")


def _store(args, migrate=False):
    store = wrap_db_errors(open_store)(_db(args))
    if migrate:
        wrap_db_errors(store.migrate)()
    elif store.schema_version() == 0:
        store.close()
        raise RegisterError(f"no register at {redact_url(store.url)}: run a playbook with the callback enabled, or "
                            f"`prodgate register init --db {redact_url(store.url)}`")
    return store


def _view(args, like=None):
    with _store(args) as store:
        return RegisterView(load(store, like=like))


def _add_common(p, json_flag=True):
    p.add_argument("--db", help="register: a SQLite path or a postgresql:// URL (default $PRODGATE_REGISTER_DB or "
                                "~/.prodgate/register/register.db)")
    if json_flag:
        add_json_flag(p)


# What --status accepts: the outcomes the callback records, "changed" (ok and changed) and
# "unknown" (an intent without an outcome: the controller stopped mid-task).
STATUSES = ("changed", "ok", "failed", "unreachable", "skipped", "unknown")


def _add_filters(p):
    p.add_argument("--system", help="only changes of this system (prodgate_system)")
    p.add_argument("--host", help="only this inventory host")
    p.add_argument("--change", dest="change_id", help="only this change id (prodgate_change_id)")
    p.add_argument("--run", help="only this run id")
    p.add_argument("--since", type=time_value, help="from this UTC time (ISO 8601, e.g. 2026-01-31 or 2026-01-31T08:00)")
    p.add_argument("--until", type=time_value, help="up to this UTC time (ISO 8601)")
    p.add_argument("--status", type=choice_list(STATUSES, "status"),
                   help="comma list of " + ", ".join(STATUSES) + " (unknown: outcome unknown)")
    p.add_argument("--all", action="store_true", help="include unchanged ok and skipped results")


def _filtered(args, rows, run_of):
    """The change rows that pass the command's filters, streamed (memory does not grow with the register)."""
    status = args.status
    if status:
        status = ",".join("ok" if s == "changed" else s for s in status.split(","))
    rows = select_changes(rows, run_of, system=args.system, host=args.host, change_id=args.change_id, since=args.since,
                          until=args.until, status=status, run=args.run, include_unchanged=args.all)
    if args.status and "changed" in args.status.split(",") and "ok" not in args.status.split(","):
        rows = (r for r in rows if r.get("changed") or r.get("status") != "ok")
    return rows


def cmd_init(args):
    with _store(args, migrate=True) as store:
        key = expand(args.key or os.environ.get("PRODGATE_REGISTER_SIGNING_KEY") or DEFAULT_KEY)
        created = False
        if not os.path.exists(key):
            generate_key(key)
            created = True
        data = {"ok": True, "db": redact_url(store.url), "backend": store.backend, "register_id": store.register_id(),
                "schema_version": store.schema_version(), "signing_key": key, "key_created": created,
                "key_id": key_id(public_key_b64(load_key(key)))}
    emit(args, data, lambda: "\n".join(f"{k}: {v}" for k, v in data.items()))
    return 0


def cmd_keygen(args):
    key = expand(args.key)
    if os.path.exists(key):
        raise RegisterError(f"{key} already exists: refusing to replace a signing key (checkpoints signed with it "
                            "would no longer verify against a new one); choose another path")
    pub = public_key_b64(generate_key(key))
    emit(args, {"ok": True, "key": key, "public_key": pub, "key_id": key_id(pub)},
         f"created {key} (key id {key_id(pub)}); public key in {key}.pub")
    return 0


RUN_COLUMNS = [
    ("RUN", lambda r: r["run"][:12]),
    ("STARTED", lambda r: str(r["started"] or "")[:19]),
    ("CHANGE", lambda r: r["change_id"] or "-"),
    ("SYSTEM", lambda r: r["system"] or "-"),
    ("STATE", "state"),
    ("PLAYBOOK", "playbook", True),
    ("AWX", lambda r: f"job {r['awx_job_id']} by {r['awx_user']}" if r.get("awx_job_id") else "", True),
]


def _shown_status(row):
    return "changed" if row.get("status") == "ok" and row.get("changed") else row.get("status")


CHANGE_TABLE = [
    ("SEQ", "seq"),
    ("TIME", lambda r: str(r.get("ts") or "")[:19]),
    ("CHANGE", lambda r: r.get("change_id") or "-"),
    ("HOST", "host"),
    ("STATUS", _shown_status),
    ("MODULE", lambda r: r.get("module") or "-", True),
    ("TASK", "task", True),
    ("NOTE", lambda r: " ".join(n for n, on in (("[check mode]", r.get("check_mode")), ("[censored]", r.get("censored")))
                                if on), True),
]


def cmd_runs(args):
    with _store(args) as store:
        runs = list_runs(RegisterView(iter_entries(store), keep_changes=False))
    output_rows(args, runs, RUN_COLUMNS, what="runs")
    return 0


def cmd_changes(args):
    with _store(args) as store:
        view, rows = RegisterView.stream_changes(iter_entries(store))
        output_rows(args, _filtered(args, rows, view.run_of), CHANGE_TABLE, fields=CHANGE_COLUMNS,
                    what="changes")
    return 0


def cmd_show(args):
    data = show_run(_view(args), args.run_id)

    def text():
        r = data["run"]
        lines = [f"{k}: {v}" for k, v in r.items()]
        lines.append("")
        lines.append(table_text(CHANGE_TABLE, [dict(c, change_id=r.get("change_id")) for c in data["tasks"]]))
        return "\n".join(lines)
    emit(args, data, text)
    return 0


def _trusted(args):
    paths = list(args.trusted_key or [])
    if not paths:
        key = expand(os.environ.get("PRODGATE_REGISTER_SIGNING_KEY") or DEFAULT_KEY)
        if os.path.exists(key + ".pub"):
            paths = [key + ".pub"]
        elif os.path.exists(key):
            paths = [key]
    return load_public_keys(paths) if paths else None


class _TrackedStore:  # pylint: disable=too-few-public-methods
    """The store as ``verify_register`` reads it, with a progress display over its rows on a terminal."""

    def __init__(self, store, description):
        self._store, self._description = store, description

    def __getattr__(self, name):
        return getattr(self._store, name)

    def iter_rows(self, *args, **kwargs):
        return track(self._store.iter_rows(*args, **kwargs), self._description, total=self._store.head()[0])


EXIT_TAMPERED = 1
EXIT_UNANCHORED = 3  # the chain is intact but nothing outside the register (anchor, witness, trusted key) vouched for it


def cmd_verify(args):
    trusted = _trusted(args)
    with _store(args) as store:
        template = os.environ.get("PRODGATE_REGISTER_ANCHOR") or DEFAULT_ANCHOR
        register_id = store.register_id()
        anchors = list(args.anchor or []) or [anchor_path(template, register_id)]
        witnesses = parse_witnesses(",".join(args.witness) if args.witness else witness_spec(template), register_id)
        started = time.perf_counter()
        report = wrap_db_errors(verify_register)(_TrackedStore(store, "verifying the register"), trusted_keys=trusted,
                                                 anchor_paths=anchors, witnesses=witnesses)
        elapsed = time.perf_counter() - started
    report["seconds"] = round(elapsed, 3)
    report["entries_per_second"] = int(report["entries"] / elapsed) if elapsed > 0 else None
    report["anchors"] = [a for a in anchors if os.path.exists(a)]
    report["trusted_keys"] = sorted(trusted) if trusted else None
    report["witnesses"] = [_witness_status(kind, where) for kind, where in witnesses]
    witnessed = [w for w in report["witnesses"] if w.get("checkpoints")]
    report["checked"] = {
        "chain": True,
        "checkpoint_signatures": report["checkpoints"],
        "signer_pinned": bool(trusted),
        "anchor": bool(report["anchors"]),
        "witness": bool(witnessed),
        "witnessed_up_to": max((w["latest_seq"] for w in witnessed), default=None),
    }
    missing = []
    if not report["anchors"] and not witnessed:
        missing.append("no anchor and no witness holds a checkpoint: a truncated or rolled-back register cannot be "
                       "told from a whole one (restore the anchor or point --witness at the witness)")
    if not trusted:
        missing.append("no trusted public key: a register rewritten and re-signed with another key would verify "
                       "(pass --trusted-key)")
    report["unanchored"] = missing
    report["allow_unanchored"] = bool(args.allow_unanchored)
    if not report["ok"]:
        code = EXIT_TAMPERED
    elif missing and not args.allow_unanchored:
        code = EXIT_UNANCHORED
    else:
        code = 0
    report["exit_code"] = code
    if code:
        report["ok"] = False

    def text():
        lines = [f"register: {report['entries']} entries, {report['checkpoints']} signed checkpoints, head "
                 f"{report['head'][:16]}... ({report['entries_per_second']} entries/s)"]
        if not report["problems"]:
            lines.append("chain: OK: every entry matches its hash and links to the one before; every checkpoint "
                         "signature is valid" + (f"; signer pinned ({', '.join(report['trusted_keys'])})" if trusted else ""))
        else:
            lines.append(f"verify: FAILED: {report['first_problem']['message']}")
            lines += [f"  - [{p['kind']}] {p['message']}" for p in report["problems"][1:]]
        for a in report["anchors"]:
            lines.append(f"anchor: {a}")
        for w in report["witnesses"]:
            if w["kind"] == "syslog":
                lines.append(f"witness: syslog facility {w['where']} (write-only: compare in the SIEM)")
            else:
                protection = {True: ", append-only",
                              False: ", not append-only: keep a copy where this controller cannot rewrite it "
                                     "(docs/change-register.md, Witnesses)",
                              None: ""}[w["append_only"]]
                lines.append(f"witness: {w['where']}: {w['checkpoints']} checkpoint(s)"
                             + (f", latest entry {w['latest_seq']}" if w["checkpoints"] else "") + protection)
        if report["unsigned_tail"]:
            lines.append(f"note: the last {report['unsigned_tail']} entries are after the last signed checkpoint "
                         "(a run in progress, killed, or not yet checkpointed)")
        for m in missing:
            lines.append(("warning (--allow-unanchored): " if args.allow_unanchored else "UNANCHORED: ") + m)
        if code == 0:
            lines.append("verify: OK")
        elif code == EXIT_UNANCHORED:
            lines.append(f"verify: UNANCHORED (exit {code}): the chain is intact but could not be checked against a "
                         "copy outside the register; --allow-unanchored accepts that")
        return "\n".join(lines)
    emit(args, report, text)
    return code


def _witness_status(kind, where):
    if kind == "syslog":
        return {"kind": kind, "where": where, "readable": False}
    entries = read_witness(where)
    return {"kind": kind, "where": where, "exists": os.path.exists(where), "checkpoints": len(entries),
            "latest_seq": entries[-1][1].get("seq") if entries else None, "append_only": append_only(where)}


def cmd_export(args):
    if args.format in ("csv", "md"):
        # streamed from the register to the output: memory does not grow with the register
        with _store(args) as store, progress("exporting the register"):
            view, stream = RegisterView.stream_changes(iter_entries(store))
            rows = _filtered(args, stream, view.run_of)
            with (open(args.output, "w", encoding="utf-8") if args.output else contextlib.nullcontext(sys.stdout)) as fh:
                if args.format == "csv":
                    count = write_csv(rows, fh)
                else:
                    fh.write("# Change register export\n\n")
                    count = write_markdown(rows, fh)
        if args.output:
            emit(args, {"ok": True, "output": args.output, "changes": count}, f"wrote {count} changes to {args.output}")
        return 0
    # json: one document with the changes, their entries with hashes, and the last checkpoint
    with _store(args) as store:
        with progress("reading the register"):
            view, stream = RegisterView.stream_changes(iter_entries(store))
            rows = list(_filtered(args, stream, view.run_of))
        seqs = {r["seq"] for r in rows} | {r["intent_seq"] for r in rows if r.get("intent_seq")}
        entries = [{"seq": s, "prev_hash": p, "hash": h, "body": json.loads(b)}
                   for s, p, h, b in (store.row(q) for q in track(sorted(seqs), "exporting entries",
                                                                  total=len(seqs), every=100))]
        cp = store.last_checkpoint_row()
        out = json.dumps({"register_id": store.register_id(), "changes": rows, "entries": entries,
                          "last_checkpoint": {"seq": cp[0], "hash": cp[2], "body": json.loads(cp[3])} if cp else None},
                         indent=2, sort_keys=True) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(out)
        emit(args, {"ok": True, "output": args.output, "changes": len(rows)}, f"wrote {len(rows)} changes to {args.output}")
    else:
        sys.stdout.write(out)
    return 0


def cmd_form(args):
    with _store(args) as store:
        form = change_form(change_view(store, args.change), args.change)
        form["gate"] = gate_status(store.bodies(), args.change, policy=_register_audit.controller_policy())
    # The form as a document a person signs off (issue 13): each fact once, decisions in words.
    emit(args, form, lambda: form_document_markdown(form_document(form)))
    return 0


def cmd_archive(args):
    arch = system_archive(_view(args), args.system)

    def text():
        lines = [f"# Operations archive: {arch['system']} (Art. 22(5))", "",
                 f"current version: {arch['current_version'] or 'unknown'}"]
        if arch["last_change"]:
            lc = arch["last_change"]
            lines.append(f"last change: {lc['change_id']} ({lc['change_type']}) run {lc['run'][:12]} at {lc['started']}")
        lines += ["", "## Configuration (last applied change per host and task)"]
        for host, tasks in sorted(arch["configuration"].items(), key=lambda kv: str(kv[0])):
            lines.append(f"- {host}")
            lines += [f"  - {t}: entry {v['seq']} {v['module']} {json.dumps(v['args'], sort_keys=True) if v['args'] else ''}"
                      for t, v in tasks.items()]
        lines += ["", "## History"]
        lines += [f"- {r['started']} {r['change_id']} {r['change_type']} version {r['version']}: {r['state']}"
                  for r in arch["history"]]
        lines += ["", "## Failures"]
        lines += [f"- {f.get('ts')} {f.get('host', '')} {f.get('task', '')}: {f['status']}" for f in arch["failures"]] or ["- none"]
        return "\n".join(lines)
    emit(args, arch, text)
    return 0


def cmd_import_journal(args):
    with _store(args) as store:
        paths = args.files or pending_journals(args.journal_dir or os.environ.get("PRODGATE_REGISTER_JOURNAL_DIR")
                                               or DEFAULT_JOURNAL_DIR, store.register_id())
        results = [import_journal(store, p) for p in paths]
        key = expand(args.key or os.environ.get("PRODGATE_REGISTER_SIGNING_KEY") or DEFAULT_KEY)
        if results and any(r["imported"] for r in results) and os.path.exists(key):
            writer = RegisterWriter(url=_db(args), signing_key=key,
                                    anchor=os.environ.get("PRODGATE_REGISTER_ANCHOR") or DEFAULT_ANCHOR)
            writer.store, writer.register_id, writer.key = store, store.register_id(), load_key(key)
            writer.anchor = anchor_path(writer.anchor, writer.register_id)
            seq = writer.checkpoint()
            if writer.broken:
                raise RegisterError(f"journal imported but the checkpoint failed: {writer.broken}")
            results[-1]["checkpoint"] = seq
    emit(args, {"ok": True, "imported": results}, lambda: "\n".join(
        f"imported {r['imported']} entries from {r['journal']}" + (f" as entries {r['first_seq']}..{r['last_seq']}"
                                                                   if r.get("first_seq") else "")
        for r in results) or "no journal waits to be imported")
    return 0


def register(subparsers):
    sub = add_group(subparsers, "register", "register_cmd",
                    help="the production change register: runs, changes, verify, export, form",
                    description="Query, verify and export the tamper-evident change register written by the "
                                "prodgate.deploy.change_register callback.")

    p = sub.add_parser("init", help="create or migrate the register and the signing key")
    _add_common(p)
    p.add_argument("--key", help=f"signing key path (default $PRODGATE_REGISTER_SIGNING_KEY or {DEFAULT_KEY})")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("keygen", help="create an Ed25519 checkpoint signing key")
    add_json_flag(p)
    p.add_argument("--key", default=DEFAULT_KEY)
    p.set_defaults(handler=cmd_keygen)

    p = sub.add_parser("runs", help="list recorded runs (the last 50; --limit, -f table|json|csv|yaml)")
    _add_common(p, json_flag=False)
    add_list_flags(p)
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("changes", help="list changes (intents without an outcome show as 'outcome unknown'; "
                                       "the last 50; --limit, -f table|json|csv|yaml)")
    _add_common(p, json_flag=False)
    add_list_flags(p)
    _add_filters(p)
    p.set_defaults(handler=cmd_changes)

    p = sub.add_parser("show", help="one run with all its entries")
    _add_common(p)
    p.add_argument("run_id", metavar="RUN", help="run id (a unique prefix is enough)")
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("verify", help="recompute the chain and check signatures, anchors and witnesses (exit 0 "
                                      "verified, 1 tampered, 3 nothing outside the register to check against)")
    _add_common(p)
    p.add_argument("--trusted-key", action="append", help="public key file (.pub) or signing key of a trusted signer; "
                                                          "repeatable (default: the local signing key)")
    p.add_argument("--anchor", action="append", help="anchor file(s) with a signed checkpoint kept outside the database")
    p.add_argument("--witness", action="append", help="witness file(s) holding every signed checkpoint (default "
                                                      "$PRODGATE_REGISTER_WITNESS or witness-{register_id}.jsonl next "
                                                      "to the anchor)")
    p.add_argument("--allow-unanchored", action="store_true",
                   help="exit 0 on an intact chain even when no anchor, witness or trusted key was available "
                        "(otherwise exit 3)")
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("export", help="export changes as csv, json (with hashes and the last checkpoint) or md")
    _add_common(p)
    _add_filters(p)
    p.add_argument("--format", choices=["csv", "json", "md"], default="json")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("form", help="the production change registration form of Art. 27 for a change id")
    _add_common(p)
    p.add_argument("change", metavar="CHANGE")
    p.set_defaults(handler=cmd_form)

    p = sub.add_parser("archive", help="the operations archive of Art. 22(5) for a system")
    _add_common(p)
    p.add_argument("system", metavar="SYSTEM")
    p.set_defaults(handler=cmd_archive)

    p = sub.add_parser("import-journal", help="append journals left by a failed register write, in order")
    _add_common(p)
    p.add_argument("--journal-dir", help=f"journal directory (default $PRODGATE_REGISTER_JOURNAL_DIR or {DEFAULT_JOURNAL_DIR})")
    p.add_argument("--key", help="sign a checkpoint after the import with this key (default: the local signing key, if any)")
    p.add_argument("files", nargs="*", help="journal files (default: all waiting for this register)")
    p.set_defaults(handler=cmd_import_journal)
    _register_audit.add(sub, _add_common)
