"""Change register: the writer used by the callback (pre-flight, append, journal, checkpoint).

Fail closed (issue 5): ``preflight`` opens and migrates the register, refuses while journals of
an earlier failure wait to be imported, checks the head against the last signed checkpoint and
the anchor file, and proves it can write by appending the run-open entry. When an append fails
later, the entries are kept in a local journal (JSON lines, chained on from the last head this
writer saw) and the writer is marked broken so the callback stops the run before the next task.
``import_journal`` appends a journal to the register later, in order.
"""
import glob
import json
import os
import time

from ..errors import RegisterError
from .chain import GENESIS, entry_hash, generate_key, load_key, make_checkpoint, read_anchor, signature_ok, verify_entries, write_anchor
from ..base import utc_stamp
from .merkle import Frontier, leaf_hash
from ..base import canonical_json
from .store import open_store, redact_url, wrap_db_errors
from .witness import default_witness, latest_witnessed, parse_witnesses, read_witness, witness_checkpoint

DEFAULT_KEY = "~/.prodgate/register/signing.key"
DEFAULT_ANCHOR = "~/.prodgate/register/anchor-{register_id}.json"
DEFAULT_JOURNAL_DIR = "~/.prodgate/register/journal"
WITNESS_ENV = "PRODGATE_REGISTER_WITNESS"


def witness_spec(anchor_template=DEFAULT_ANCHOR):
    """The configured witnesses (``$PRODGATE_REGISTER_WITNESS``), or a file next to the anchor."""
    return os.environ.get(WITNESS_ENV) or default_witness(anchor_template or DEFAULT_ANCHOR)


def expand(path):
    return os.path.abspath(os.path.expanduser(path)) if path else path


def anchor_path(template, register_id):
    """The anchor file of a register: ``{register_id}`` in the option is replaced by its id."""
    return expand(template.replace("{register_id}", register_id)) if template else None


def _runs_opened_and_closed(body_text):
    """(run_open run id or None, run_close run id or None) of an entry, parsing only those two kinds."""
    if '"kind":"run_open"' in body_text:
        return json.loads(body_text).get("run"), None
    if '"kind":"run_close"' in body_text:
        return None, json.loads(body_text).get("run")
    return None, None


def open_runs_after(base, rows):
    """Runs still open after ``rows``, starting from the open runs ``base`` (a list of run ids)."""
    open_runs = list(base or [])
    for row in rows:
        opened, closed = _runs_opened_and_closed(row[3])
        if opened and opened not in open_runs:
            open_runs.append(opened)
        if closed and closed in open_runs:
            open_runs.remove(closed)
    return open_runs


def tail_check(store, anchor_path=None, trusted_keys=None, witnesses=()):
    """Verify the last checkpointed run and everything after it, against the anchor and the witnesses.

    This is the bounded check run before every playbook: from the checkpoint before the last one
    (so the whole last run is re-hashed) to the head. ``verify_register`` checks everything.

    The unsigned tail after the last checkpoint is accepted only entry by entry as part of a run
    that was open when that checkpoint was signed (a concurrent run) or opened after it: an entry
    forged after the last checkpoint for a finished run, or for no run, is refused here before the
    next checkpoint would sign it (issue 13).
    """
    register_id = store.register_id()
    cps = [r for r in store.last_checkpoint_rows(2) if json.loads(r[3]).get("kind") == "checkpoint"]
    start = cps[1][0] if len(cps) > 1 else 1
    rows = list(store.iter_rows(start=start))
    problems = []
    if rows and start > 1:
        before = store.row(start - 1)
        if before is None or before[2] != rows[0][1]:
            problems.append(f"entry {start} does not link to entry {start - 1}")
    prev = rows[0][1] if rows else None
    for seq, stored_prev, stored_hash, body in rows:
        if stored_prev != prev or entry_hash(stored_prev, body) != stored_hash:
            problems.append(f"entry {seq} was altered or its chain is broken")
            break
        prev = stored_hash
    for cp in cps:
        body = json.loads(cp[3])
        if body.get("count") != cp[0] - 1 or body.get("head") != cp[1] or not signature_ok(body):
            problems.append(f"checkpoint entry {cp[0]} does not match the chain or its signature is bad")
        elif trusted_keys is not None and body.get("key_id") not in trusted_keys:
            problems.append(f"checkpoint entry {cp[0]} is signed by untrusted key {body.get('key_id')}")
    if cps and not problems:
        problems += _unsigned_tail_problems(cps, rows)
    head_seq = store.head()[0]
    sources = []
    anchor = read_anchor(anchor_path) if anchor_path else None
    if anchor and anchor.get("register_id") == register_id:
        sources.append((f"anchor {anchor_path}", anchor))
    sources += latest_witnessed(witnesses)
    if cps and not sources:
        problems.append(f"the register has signed checkpoints but no anchor ({anchor_path}) and no witness holds one: "
                        "the anchor was deleted, so a truncated register could not be told from a whole one; restore "
                        "the anchor or the witness from its copy")
    for name, source in sources:
        a_seq = source.get("seq") or 0
        if a_seq > head_seq:
            problems.append(f"tail truncated: the {name} holds checkpoint {a_seq}, the register ends at {head_seq}")
            continue
        row = store.row(a_seq)
        if row is None or json.loads(row[3]).get("signature") != source.get("signature"):
            problems.append(f"the checkpoint in the {name} (entry {a_seq}) is not in the register")
    return problems


# Entries written outside a run's own stream. The approval gate's decision and the completion of a
# change are appended inside a run by the single-use ledger, without the run id: they are accepted
# when their change is the change of a run allowed to write. A retrospective approval and a ledger
# import are recorded from the command line (`prodgate register retrospective`, `prodgate ledger
# import`), outside any run.
CHANGE_BOUND_KINDS = ("gate_decision", "change_completed")
COMMAND_LINE_KINDS = ("retrospective_approval", "ledger_import")


def _unsigned_tail_problems(cps, rows):
    """Entries after the last checkpoint that belong to no run open at it or opened after it."""
    last_seq = cps[0][0]
    if len(cps) > 1:
        base = json.loads(cps[1][3]).get("open_runs") or []
        span = [r for r in rows if cps[1][0] < r[0] < last_seq]
    else:
        base, span = [], [r for r in rows if r[0] < last_seq]
    allowed = set(open_runs_after(base, span))
    changes = {}
    for seq, _prev, _hash, body in rows:
        if '"kind":"run_open"' in body or '"kind":"run_change"' in body:  # run_change: the change as the play saw it
            opened = json.loads(body)
            changes[opened.get("run")] = (opened.get("change") or {}).get("id")
    for seq, _prev, _hash, body in rows:
        if seq <= last_seq:
            continue
        opened, _closed = _runs_opened_and_closed(body)
        if opened:
            allowed.add(opened)
            continue
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        run, kind = data.get("run"), data.get("kind")
        if run is None and kind in CHANGE_BOUND_KINDS and data.get("change_id") in {changes.get(r) for r in allowed}:
            continue
        if run is None and kind in COMMAND_LINE_KINDS:
            continue
        if run not in allowed:
            return [f"entry {seq} after the last signed checkpoint (entry {last_seq}) belongs to run {run}, which "
                    "was neither open at that checkpoint nor opened after it: an entry was added to the register "
                    "outside a run (forged); it would be signed by the next checkpoint"]
    return []


def verify_register(store, trusted_keys=None, anchor_paths=(), witnesses=()):
    """Verify every entry, and the register against the anchors and every checkpoint of the file witnesses."""
    register_id = store.register_id()
    anchors = [(f"anchor {p}", read_anchor(p)) for p in anchor_paths if p]
    anchors = [(p, a) for p, a in anchors if a is not None]
    witnessed = []
    for kind, where in witnesses:
        if kind == "file":
            witnessed += [(f"witness {where} line {n}", cp) for n, cp in read_witness(where)]
    return verify_entries(store.iter_rows(), register_id, trusted_keys=trusted_keys, anchors=anchors + witnessed,
                          lookup=store.lookup)


class Journal:
    """Local JSON-lines journal of entries that could not be written (one file per run)."""

    def __init__(self, directory, register_id, run_id, prev_hash):
        self.path = os.path.join(expand(directory), register_id, f"{run_id}.jsonl")
        self.prev = prev_hash or GENESIS
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)

    def write(self, bodies):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            for body in bodies:
                h = entry_hash(self.prev, body)
                fh.write(json.dumps({"prev": self.prev, "hash": h, "body": body}, sort_keys=True) + "\n")
                self.prev = h
            fh.flush()
            os.fsync(fh.fileno())


def pending_journals(directory, register_id):
    return sorted(glob.glob(os.path.join(expand(directory), register_id, "*.jsonl")))


def read_journal(path):
    entries = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError as exc:
                raise RegisterError(f"journal {path} line {lineno} is not JSON ({exc}): the journal was damaged; "
                                    "keep the file for the audit and import nothing from it") from exc
    prev = entries[0]["prev"] if entries else None
    for n, ent in enumerate(entries, 1):
        if ent["prev"] != prev or entry_hash(ent["prev"], ent["body"]) != ent["hash"]:
            raise RegisterError(f"journal {path} entry {n} breaks the journal's chain: it was altered; keep the file "
                                "for the audit and import nothing from it")
        prev = ent["hash"]
    return entries


def import_journal(store, path):
    """Append a journal's entries in order, then a journal_import entry; rename it ``.imported``."""
    entries = read_journal(path)
    if not entries:
        os.replace(path, path + ".imported")
        return {"journal": path, "imported": 0}
    first_prev = entries[0]["prev"]
    if first_prev != GENESIS and store.lookup(first_prev) is None:
        raise RegisterError(f"journal {path} continues from entry hash {first_prev[:12]}..., which is not in register "
                            f"{redact_url(store.url)}: it belongs to another register")
    marker = canonical_json({
        "kind": "journal_import", "ts": utc_stamp(), "run": json.loads(entries[0]["body"]).get("run"),
        "journal": os.path.basename(path), "entries": len(entries), "continues_from": first_prev,
        "journal_head": entries[-1]["hash"],
    })
    rows = wrap_db_errors(store.append)([e["body"] for e in entries] + [marker])
    os.replace(path, path + ".imported")
    return {"journal": path, "imported": len(entries), "first_seq": rows[0][0], "last_seq": rows[-1][0]}


class RegisterWriter:
    """What the callback drives. Every public method raises RegisterError with a fix in the message."""

    def __init__(self, url=None, signing_key=DEFAULT_KEY, anchor=DEFAULT_ANCHOR, journal_dir=DEFAULT_JOURNAL_DIR,
                 busy_timeout_ms=5000, durability="NORMAL", create_key=True, witness=None):
        self.url = url
        self.witness_spec = witness or witness_spec(anchor)
        self.protect_witness = bool(witness or os.environ.get(WITNESS_ENV))
        self.witnesses = []
        self.signing_key = expand(signing_key)
        self.anchor = anchor
        self.journal_dir = expand(journal_dir)
        self.busy_timeout_ms = busy_timeout_ms
        self.durability = durability
        self.create_key = create_key
        self.store = None
        self.key = None
        self.register_id = None
        self.last_hash = None
        self.broken = None
        self.journal = None
        self.run_id = None

    def preflight(self, run_open):
        """Open, migrate, check integrity and write the run-open entry. Raises RegisterError."""
        self.run_id = run_open["run"]
        self.store = wrap_db_errors(open_store)(self.url, busy_timeout_ms=self.busy_timeout_ms, durability=self.durability)
        wrap_db_errors(self.store.migrate)()
        self.register_id = self.store.register_id()
        waiting = pending_journals(self.journal_dir, self.register_id)
        if waiting:
            raise RegisterError(f"{len(waiting)} journal(s) of an earlier register failure wait in "
                                f"{os.path.dirname(waiting[0])}: import them first with "
                                f"`prodgate register import-journal --db {redact_url(self.store.url)}`")
        if not os.path.exists(self.signing_key):
            if not self.create_key or self.store.last_checkpoint_row() is not None:
                raise RegisterError(f"register signing key {self.signing_key} does not exist: restore it, or create one "
                                    f"with `prodgate register keygen --key {self.signing_key}`")
            try:
                generate_key(self.signing_key)
            except FileExistsError:
                pass  # another controller process created it a moment ago
        self.key = self._load_key()
        self.anchor = anchor_path(self.anchor, self.register_id)
        self.witnesses = parse_witnesses(self.witness_spec, self.register_id)
        problems = wrap_db_errors(tail_check)(self.store, self.anchor, witnesses=self.witnesses)
        if problems:
            raise RegisterError(f"register {redact_url(self.store.url)} failed its integrity check: {problems[0]}; run "
                                "`prodgate register verify` and investigate before any change")
        self.append([run_open])
        if self.broken:
            raise RegisterError(f"register {redact_url(self.store.url)} is not writable: {self.broken}")

    def _load_key(self):
        for _attempt in range(50):
            try:
                return load_key(self.signing_key)
            except RegisterError:
                if os.path.getsize(self.signing_key) > 0:
                    raise
                time.sleep(0.05)  # being written by the process that created it
        return load_key(self.signing_key)

    def append(self, bodies):
        """Append entry dicts; on failure journal them and mark the writer broken. Returns False then."""
        texts = [canonical_json(b) for b in bodies]
        if self.broken is None:
            try:
                rows = wrap_db_errors(self.store.append)(texts)
                self.last_hash = rows[-1][2]
                return True
            except RegisterError as exc:
                self.broken = str(exc)
        self._journal(texts)
        return False

    def _journal(self, texts):
        if self.register_id is None:
            return
        if self.journal is None:
            self.journal = Journal(self.journal_dir, self.register_id, self.run_id, self.last_hash)
        self.journal.write(texts)

    def checkpoint(self):
        """Sign (count, head) and append the checkpoint; copy it to the anchor file and the witnesses."""
        if self.broken or self.key is None:
            return None

        def _do():
            with self.store.durable_commit():
                rows = self.store._execute("SELECT seq, hash FROM register_entries ORDER BY seq DESC LIMIT 1")  # pylint: disable=protected-access
                seq, head = rows[0]
                open_runs, frontier = self._since_last_checkpoint(seq)
                cp = make_checkpoint(self.key, self.register_id, seq, head, run_id=self.run_id,
                                     open_runs=open_runs, frontier=frontier)
                text = canonical_json(cp)
                h = entry_hash(head, text)
                self.store._insert_many([(seq + 1, head, h, text)])  # pylint: disable=protected-access
            return seq + 1, cp, h
        try:
            seq, cp, h = wrap_db_errors(_do)()
        except RegisterError as exc:
            self.broken = str(exc)
            return None
        self.last_hash = h
        write_anchor(self.anchor, cp, seq)
        if not self.witnesses:
            self.witnesses = parse_witnesses(self.witness_spec, self.register_id)
        problems = witness_checkpoint(self.witnesses, cp, seq, protect=self.protect_witness)
        if problems:
            self.broken = (f"checkpoint entry {seq} is in the register, but a witness could not keep it: "
                           f"{problems[0]}; fix the witness before the next run")
        return seq

    def _since_last_checkpoint(self, upto):
        """Runs open at entry ``upto`` and the Merkle frontier of entries 1..upto, extended from the last checkpoint."""
        last = self.store.last_checkpoint_row()
        body = json.loads(last[3]) if last else {}
        open_runs = body.get("open_runs") or []
        if body.get("merkle_frontier") is not None and body.get("count") is not None:
            frontier, start = Frontier.from_json(body["merkle_frontier"]), body["count"] + 1
        else:
            frontier, start = Frontier(), 1  # the first checkpoint with a Merkle root covers everything once
        rows = list(self.store.iter_rows(start=start, end=upto))
        for row in rows:
            frontier.append(leaf_hash(row[3]))
        since = [r for r in rows if not last or r[0] > last[0]]
        return open_runs_after(open_runs, since), frontier

    def close(self):
        if self.store is not None:
            self.store.close()
