"""The single-use ledger, kept in the change register (issue 11: one shared state store).

Approvals are single-use and a completed change cannot run again (Art. 27). The nonces the gate
consumes, the changes completed and the highest policy version accepted per governance root live in
the change register's tables, SQLite on one controller or PostgreSQL for several controllers and
AWX, never in a file the run chooses. ``consume`` checks and records the nonces and appends the
gate's decision to the register's chain in ONE write transaction under the register's writer lock,
so two gates racing with the same evidence cannot both pass, and a consumed approval always has
its decision on record.
"""
from datetime import datetime, timezone

from .errors import ApprovalError, PolicyError, RegisterError
from .register_record import canonical_json, plain
from .register_store import open_store, redact_url, wrap_db_errors

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
        try:
            store = open_store(url)
            wrap_db_errors(store.migrate)()
        except RegisterError as exc:
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

