"""The nonce / completion ledger: approvals are single-use and a completed change cannot re-run.

A local SQLite file until the change register (issue 5) holds the same small interface:
``is_consumed``, ``consumed``, ``consume``, ``is_completed``, ``completion``, ``mark_completed``.
Consumption is atomic (one IMMEDIATE transaction, nonce as primary key), so two runs racing
with the same evidence cannot both pass (the GitLab #486878 re-run bypass, Art. 27).
"""
import os
import sqlite3
from datetime import datetime, timezone

from .errors import ApprovalError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS consumed_nonce (
    nonce TEXT PRIMARY KEY,
    change_id TEXT NOT NULL,
    consumed_at TEXT NOT NULL,
    job_id TEXT
);
CREATE TABLE IF NOT EXISTS completed_change (
    change_id TEXT PRIMARY KEY,
    completed_at TEXT NOT NULL,
    job_id TEXT
);
"""


def default_ledger_path():
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "prodgate", "ledger.sqlite")


class Ledger:
    """Local ledger of consumed approval nonces and completed changes."""

    def __init__(self, path=None):
        self.path = os.fspath(path or default_ledger_path())
        parent = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(parent, mode=0o700, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            if not self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'completed_change'").fetchone():
                # WAL: one fsync per consumption instead of several (the gate's decision time, bench/gate_bench.py)
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.executescript(_SCHEMA)
            self._db.execute("PRAGMA synchronous = FULL")
        except (OSError, sqlite3.Error) as exc:
            raise ApprovalError(f"ledger {self.path} cannot be opened: {exc}; set prodgate_ledger to a writable file") from None

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def _now():
        return datetime.now(timezone.utc).isoformat(timespec="seconds")

    def is_consumed(self, nonce):
        return self.consumed([nonce]) != {}

    def consumed(self, nonces):
        """{nonce: (change_id, consumed_at)} for those of ``nonces`` already used."""
        nonces = list(nonces)
        out = {}
        for i in range(0, len(nonces), 500):
            chunk = nonces[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT nonce, change_id, consumed_at FROM consumed_nonce WHERE nonce IN ({marks})", chunk)  # nosec B608
            out.update({row[0]: (row[1], row[2]) for row in rows})
        return out

    def consume(self, nonces, change_id, job_id=None):
        """Record ``nonces`` as used by ``change_id``, all or none; ApprovalError if any was used."""
        nonces = list(nonces)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            used = self.consumed(nonces)
            if used:
                self._db.execute("ROLLBACK")
                detail = ", ".join(f"{n} (used by {c} at {t})" for n, (c, t) in sorted(used.items()))
                raise ApprovalError(f"replay refused: approval nonce(s) already consumed: {detail}; every approval is single-use, "
                                    "sign new approvals with `prodgate approve`")
            now = self._now()
            self._db.executemany("INSERT INTO consumed_nonce VALUES (?, ?, ?, ?)", [(n, change_id, now, job_id) for n in nonces])
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ApprovalError(f"ledger {self.path} could not record the approvals: {exc}") from None

    def nonces_of(self, change_id):
        return [row[0] for row in self._db.execute("SELECT nonce FROM consumed_nonce WHERE change_id = ?", (change_id,))]

    def completion(self, change_id):
        """(completed_at, job_id) or None."""
        row = self._db.execute("SELECT completed_at, job_id FROM completed_change WHERE change_id = ?", (change_id,)).fetchone()
        return tuple(row) if row else None

    def is_completed(self, change_id):
        return self.completion(change_id) is not None

    def mark_completed(self, change_id, job_id=None):
        """Record the change as completed; returns False when it already was."""
        try:
            self._db.execute("INSERT INTO completed_change VALUES (?, ?, ?)", (change_id, self._now(), job_id))
            return True
        except sqlite3.IntegrityError:
            return False
