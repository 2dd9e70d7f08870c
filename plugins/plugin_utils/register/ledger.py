"""The single-use ledger, kept in the change register (issue 11: one shared state store).

Approvals are single-use and a completed change cannot run again (Art. 27). The nonces the gate
consumes, the changes completed and the highest policy version accepted per governance root live in
the change register's tables, SQLite on one controller or PostgreSQL for several controllers and
AWX, never in a file the run chooses. ``consume`` checks and records the nonces and appends the
gate's decision to the register's chain in ONE write transaction under the register's writer lock,
so two gates racing with the same evidence cannot both pass, and a consumed approval always has
its decision on record.
"""
import os
import sqlite3
import urllib.parse
from contextlib import closing
from datetime import datetime, timezone

from .. import input_files
from ..errors import ApprovalError, PolicyError, RegisterError
from .record import plain
from ..base import canonical_json
from .store import open_store, redact_url, wrap_db_errors

NONCE = "nonce"
COMPLETED = "completed"


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Ledger:
    """Consumed nonces, completed changes and accepted policy versions in a change register."""

    def __init__(self, store):
        self.store = store
        self.path = redact_url(store.url)

    @classmethod
    def open(cls, url, awx=False):
        """Open (and migrate) the register at ``url``. Under AWX a SQLite register dies with the job
        container, and the approvals it consumed with it: refused."""
        if not url:
            raise ApprovalError("the controller has no change register (register.db in the controller trust settings): "
                                "the gate records consumed approvals there; see docs/approvals.md#controller-trust-settings")
        if awx and not str(url).startswith(("postgresql://", "postgres://", "host=")):
            raise ApprovalError(f"this is an AWX job and the change register {url} is a local SQLite file, which dies with "
                                "the job's container together with the approvals it consumed: set the AWX credential's "
                                "PRODGATE_REGISTER_DB to the shared postgresql:// register")
        if "\0" in str(url):
            raise ApprovalError(f"the change register {str(url)!r} contains a NUL byte, which no file name or URL can "
                                "hold: correct register.db in the controller trust settings")
        try:
            store = open_store(url)
        except RegisterError as exc:
            raise ApprovalError(f"the change register (the single-use ledger) cannot be used: {exc}") from None
        legacy = legacy_ledger_counts(store)
        if legacy is not None:
            store.close()
            raise ApprovalError(_legacy_message(redact_url(url), legacy))
        try:
            wrap_db_errors(store.migrate)()
        except RegisterError as exc:
            store.close()
            raise ApprovalError(f"the change register (the single-use ledger) cannot be used: {exc}") from None
        return cls(store)

    def close(self):
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reads --------------------------------------------------------------------------------------
    def _rows(self, kind, values):
        values = list(values)
        out = {}
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.store._read(self.store._sql(  # pylint: disable=protected-access
                f"SELECT value, change_id, recorded_at FROM register_ledger WHERE kind = ? AND value IN ({marks})"),  # nosec B608
                [kind] + chunk)
            out.update({row[0]: (row[1], row[2]) for row in rows})
        return out

    def consumed(self, nonces):
        """{nonce: (change_id, consumed_at)} for those of ``nonces`` already used."""
        return wrap_db_errors(self._rows)(NONCE, nonces)

    def is_consumed(self, nonce):
        return self.consumed([nonce]) != {}

    def nonces_of(self, change_id):
        rows = self.store._read(self.store._sql(  # pylint: disable=protected-access
            "SELECT value FROM register_ledger WHERE kind = ? AND change_id = ?"), (NONCE, change_id))
        return [row[0] for row in rows]

    def completion(self, change_id):
        """(completed_at, None) or None."""
        row = self._rows(COMPLETED, [change_id]).get(change_id)
        return (row[1], None) if row else None

    def is_completed(self, change_id):
        return self.completion(change_id) is not None

    # -- writes -------------------------------------------------------------------------------------
    def consume(self, nonces, change_id, job_id=None, decision=None):
        """Record ``nonces`` as used by ``change_id`` and append ``decision`` (the gate's decision
        entry) to the register, all or none; ApprovalError if any nonce was already used."""
        nonces = list(nonces)
        store = self.store
        try:
            with store.write_txn():
                used = self._rows(NONCE, nonces)
                if used:
                    raise _Replay(used)
                now = _now()
                for nonce in nonces:
                    store._execute(  # pylint: disable=protected-access
                        "INSERT INTO register_ledger (kind, value, change_id, recorded_at) VALUES (?, ?, ?, ?)",
                        (NONCE, nonce, change_id, now))
                if decision is not None:
                    body = dict(decision, kind="gate_decision", ts=now, job_id=job_id)
                    store.append_in_txn([canonical_json(plain(body))])
        except _Replay as exc:
            detail = ", ".join(f"{n} (used by {c} at {t})" for n, (c, t) in sorted(exc.used.items()))
            raise ApprovalError(f"replay refused: approval nonce(s) already consumed: {detail}; every approval is "
                                "single-use, sign new approvals with `prodgate approve`") from None
        except ApprovalError:
            raise
        except Exception as exc:  # pylint: disable=broad-except  # backend errors: fail closed with the reason
            raise ApprovalError(f"the change register {self.path} could not record the approvals: "
                                f"{type(exc).__name__}: {str(exc).strip()}") from None

    def record_decision(self, decision, job_id=None):
        """Append a gate decision that consumed nothing (a trial run, a rehearsal)."""
        body = dict(decision, kind="gate_decision", ts=_now(), job_id=job_id)
        wrap_db_errors(self.store.append)([canonical_json(plain(body))])

    def mark_completed(self, change_id, job_id=None):
        """Record the change as completed; returns False when it already was."""
        store = self.store
        with store.write_txn():
            if self._rows(COMPLETED, [change_id]):
                return False
            now = _now()
            store._execute(  # pylint: disable=protected-access
                "INSERT INTO register_ledger (kind, value, change_id, recorded_at) VALUES (?, ?, ?, ?)",
                (COMPLETED, change_id, change_id, now))
            store.append_in_txn([canonical_json(plain({"kind": "change_completed", "change_id": change_id,
                                                       "ts": now, "job_id": job_id}))])
        return True

    # -- policy anti-rollback (TUF-style) -----------------------------------------------------------
    def highest_policy_version(self, root_id):
        rows = self.store._read(self.store._sql(  # pylint: disable=protected-access
            "SELECT version FROM register_policy_versions WHERE root_id = ?"), (root_id,))
        return rows[0][0] if rows else None

    def accept_policy_version(self, root_id, version, where):
        """Refuse a policy older than the highest version accepted under this governance root; record
        a newer one. Returns the previous highest version (or None)."""
        store = self.store
        with store.write_txn():
            rows = store._execute(  # pylint: disable=protected-access
                "SELECT version FROM register_policy_versions WHERE root_id = ?", (root_id,))
            highest = rows[0][0] if rows else None
            if highest is not None and version < highest:
                raise PolicyError(f"policy {where} is version {version}, older than version {highest} already accepted "
                                  "under this governance root (rollback refused: a superseded policy can bring back "
                                  f"revoked keys); use the current policy, version {highest} or later")
            if highest is None:
                store._execute(  # pylint: disable=protected-access
                    "INSERT INTO register_policy_versions (root_id, version, accepted_at) VALUES (?, ?, ?)",
                    (root_id, version, _now()))
            elif version > highest:
                store._execute(  # pylint: disable=protected-access
                    "UPDATE register_policy_versions SET version = ?, accepted_at = ? WHERE root_id = ?",
                    (version, _now(), root_id))
        return highest


class _Replay(Exception):
    def __init__(self, used):
        super().__init__("replay")
        self.used = used


# ---- the single-use ledger of the old schema --------------------------------------------------
# Before issue 11 the ledger was a SQLite file of its own with these tables. Opening such a file as
# the change register would create an empty register beside them and forget every approval they
# consumed, so they could pass again: refused, naming the migration (`prodgate ledger import`).
LEGACY_TABLES = ("consumed_nonce", "completed_change")


def legacy_ledger_counts(store):
    """{table: rows} when ``store`` holds the old ledger tables, else None."""
    if store.backend != "sqlite":
        return None  # the old ledger was only ever a local SQLite file
    try:
        names = {row[0] for row in store._read("SELECT name FROM sqlite_master WHERE type = 'table'")}  # pylint: disable=protected-access
        return {table: store._read(f"SELECT count(*) FROM {table}")[0][0]  # nosec B608 - fixed table names  # pylint: disable=protected-access
                for table in LEGACY_TABLES if table in names} or None
    except Exception:  # pylint: disable=broad-except  # not a database at all: migrate reports it
        return None


def _legacy_message(where, counts):
    return (f"{where} is a single-use ledger of the old schema (tables {', '.join(sorted(counts))}: "
            f"{counts.get('consumed_nonce', 0)} consumed approval(s), {counts.get('completed_change', 0)} completed "
            "change(s)), not a change register: the ledger now lives in the change register, and using this file as "
            "one would forget those approvals and let them pass again; migrate it: `prodgate ledger import "
            f"{where} --db <change register>` copies them into the change register; then set register.db in the "
            "controller trust settings to that register (docs/approvals.md#controller-trust-settings)")


def import_legacy_ledger(ledger, path):
    """Copy the consumed nonces and completed changes of an old-schema ledger file into ``ledger``
    (the change register's), in one transaction with a ``ledger_import`` entry on the register's
    chain. Rows already there are kept. Returns the counts imported."""
    path = os.path.abspath(input_files.check_path(path, "old ledger", ApprovalError))
    if not os.path.isfile(path):
        raise ApprovalError(f"old ledger {path} is not a file: give the ledger.sqlite of the old schema")
    try:
        with closing(sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)) as db:
            nonces = db.execute("SELECT nonce, change_id, consumed_at FROM consumed_nonce").fetchall()
            done = db.execute("SELECT change_id, change_id, completed_at FROM completed_change").fetchall()
    except sqlite3.Error as exc:
        raise ApprovalError(f"old ledger {path} cannot be read as a ledger of the old schema ({exc}): give the "
                            "ledger.sqlite the gate used before the change register held the ledger") from None
    store, added = ledger.store, {NONCE: 0, COMPLETED: 0}
    try:
        with store.write_txn():
            for kind, rows in ((NONCE, nonces), (COMPLETED, done)):
                have = ledger._rows(kind, [row[0] for row in rows])  # pylint: disable=protected-access
                for value, change_id, when in rows:
                    if value not in have:
                        store._execute(  # pylint: disable=protected-access
                            "INSERT INTO register_ledger (kind, value, change_id, recorded_at) VALUES (?, ?, ?, ?)",
                            (kind, str(value), str(change_id), str(when)))
                        added[kind] += 1
            store.append_in_txn([canonical_json(plain({"kind": "ledger_import", "source": path, "ts": _now(),
                                                       "nonces": added[NONCE], "completed": added[COMPLETED]}))])
    except Exception as exc:  # pylint: disable=broad-except  # backend errors: nothing was imported
        raise ApprovalError(f"the change register {ledger.path} could not import {path}: "
                            f"{type(exc).__name__}: {str(exc).strip()}") from None
    return {"source": path, "register": ledger.path, "nonces": added[NONCE], "completed": added[COMPLETED],
            "already_there": len(nonces) + len(done) - added[NONCE] - added[COMPLETED]}
