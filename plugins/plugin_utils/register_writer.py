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

from .errors import RegisterError
from .register_chain import (GENESIS, entry_hash, generate_key, load_key, make_checkpoint, read_anchor,
                             signature_ok, verify_entries, write_anchor, utc_now)
from .register_record import canonical_json
from .register_store import open_store, redact_url, wrap_db_errors

DEFAULT_KEY = "~/.prodgate/register/signing.key"
DEFAULT_ANCHOR = "~/.prodgate/register/anchor-{register_id}.json"
DEFAULT_JOURNAL_DIR = "~/.prodgate/register/journal"


def expand(path):
    return os.path.abspath(os.path.expanduser(path)) if path else path


def anchor_path(template, register_id):
    """The anchor file of a register: ``{register_id}`` in the option is replaced by its id."""
    return expand(template.replace("{register_id}", register_id)) if template else None


def tail_check(store, anchor_path=None, trusted_keys=None):
    """Verify the last checkpointed run and everything after it, and the anchor.

    This is the bounded check run before every playbook: from the checkpoint before the last one
    (so the whole last run is re-hashed) to the head. ``verify_register`` checks everything.
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
    anchor = read_anchor(anchor_path) if anchor_path else None
    head_seq = store.head()[0]
    if anchor and anchor.get("register_id") == register_id:
        a_seq = anchor.get("seq") or 0
        if a_seq > head_seq:
            problems.append(f"tail truncated: the anchor {anchor_path} holds checkpoint {a_seq}, the register ends at {head_seq}")
        else:
            row = store.row(a_seq)
            if row is None or json.loads(row[3]).get("signature") != anchor.get("signature"):
                problems.append(f"the checkpoint in anchor {anchor_path} (entry {a_seq}) is not in the register")
    return problems


def verify_register(store, trusted_keys=None, anchor_paths=()):
    register_id = store.register_id()
    anchors = [(p, read_anchor(p)) for p in anchor_paths if p]
    anchors = [(p, a) for p, a in anchors if a is not None]
    return verify_entries(store.iter_rows(), register_id, trusted_keys=trusted_keys, anchors=anchors,
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
        "kind": "journal_import", "ts": utc_now(), "run": json.loads(entries[0]["body"]).get("run"),
        "journal": os.path.basename(path), "entries": len(entries), "continues_from": first_prev,
        "journal_head": entries[-1]["hash"],
    })
    rows = wrap_db_errors(store.append)([e["body"] for e in entries] + [marker])
    os.replace(path, path + ".imported")
    return {"journal": path, "imported": len(entries), "first_seq": rows[0][0], "last_seq": rows[-1][0]}


class RegisterWriter:
    """What the callback drives. Every public method raises RegisterError with a fix in the message."""

    def __init__(self, url=None, signing_key=DEFAULT_KEY, anchor=DEFAULT_ANCHOR, journal_dir=DEFAULT_JOURNAL_DIR,
                 busy_timeout_ms=5000, durability="NORMAL", create_key=True):
        self.url = url
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
        problems = wrap_db_errors(tail_check)(self.store, self.anchor)
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
        """Sign (count, head) and append the checkpoint; keep a copy in the anchor file."""
        if self.broken or self.key is None:
            return None

        def _do():
            with self.store.durable_commit():
                rows = self.store._execute("SELECT seq, hash FROM register_entries ORDER BY seq DESC LIMIT 1")  # pylint: disable=protected-access
                seq, head = rows[0]
                cp = make_checkpoint(self.key, self.register_id, seq, head, run_id=self.run_id)
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
        return seq

    def close(self):
        if self.store is not None:
            self.store.close()
