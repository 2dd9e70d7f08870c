# -*- coding: utf-8 -*-
# Copyright (c) 2026 prodgate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: change_register
type: notification
short_description: Record every production change in a tamper-evident register
version_added: 0.1.0
author: prodgate contributors (@prodgate)
description:
  - Records each run (playbook, controller, user, AWX job and user, project revision, check and diff mode, change id and
    type, the approvals verified by M(prodgate.deploy.approval_gate), the window decision of
    M(prodgate.deploy.change_window), implementers, supervisor, final stats) and, per host and task, an intent
    entry when the task is queued and then its outcome (module, task, role, arguments with C(no_log) values censored and
    secret-looking keys masked, the diff when Ansible produced one, duration). Policy Art. 22(5), 25 and 27.
  - Every entry is chained with SHA-256 to the previous one; at the end of each run a checkpoint is signed with an Ed25519
    key and copied to an anchor file outside the database. Check it with C(prodgate register verify).
  - Fails closed. Before the first task it checks that the register is writable and its head intact, and stops the run
    otherwise (exit code 69). If a write fails during the run, the entry goes to a local journal and the run stops before
    the next task starts (exit code 74); C(prodgate register import-journal) appends the journal later.
  - The register, its signing key, anchor and journal come from the controller's trust settings
    (C(/etc/prodgate/controller.yml), or the environment an AWX credential injects; see C(docs/approvals.md)), never from the
    run. Without trust settings the callback stops the run before any task (exit code 69).
  - SQLite serves a single controller. Use PostgreSQL for several controllers and for AWX, whose jobs run in throwaway
    containers; inside an AWX job the callback refuses a SQLite register and an anchor or journal not configured.
  - Enable it by FQCN, for example C(ANSIBLE_CALLBACKS_ENABLED=prodgate.deploy.change_register) or
    C(callbacks_enabled = prodgate.deploy.change_register) in C([defaults]) of C(ansible.cfg).
requirements:
  - Enable it in configuration (C(callbacks_enabled)); keep C(bin_ansible_callbacks = True) so ad-hoc runs are recorded.
  - The Python packages C(cryptography) and, for PostgreSQL, C(psycopg) 3 on the controller.
options:
  record_ok:
    description: Record arguments and diff of unchanged C(ok) results too. When false, only their status is recorded.
    type: bool
    default: true
    env:
      - name: PRODGATE_REGISTER_RECORD_OK
    ini:
      - section: callback_change_register
        key: record_ok
  record_skipped:
    description: Record skipped results in full. When false, only their status is recorded (batched with the next write).
    type: bool
    default: false
    env:
      - name: PRODGATE_REGISTER_RECORD_SKIPPED
    ini:
      - section: callback_change_register
        key: record_skipped
  diff_storage:
    description:
      - V(full) stores the redacted before and after of diffs; V(hash) stores only their SHA-256, for systems whose
        configuration must not be copied into the register.
    type: str
    default: full
    choices: [full, hash]
    env:
      - name: PRODGATE_REGISTER_DIFF_STORAGE
    ini:
      - section: callback_change_register
        key: diff_storage
  durability:
    description:
      - SQLite C(synchronous) setting for ordinary entries. With V(NORMAL) an acknowledged entry has been written to the
        operating system, so it survives any crash of the controller process (SIGKILL, OOM); each run's signed
        checkpoint is committed with an fsync, so a power cut can lose at most the entries after the last checkpoint.
        V(FULL) fsyncs every entry (survives power loss at once) at the cost of one fsync per task and host.
      - PostgreSQL always commits with C(synchronous_commit=on).
    type: str
    default: NORMAL
    choices: [FULL, EXTRA, NORMAL]
    env:
      - name: PRODGATE_REGISTER_DURABILITY
    ini:
      - section: callback_change_register
        key: durability
  busy_timeout:
    description: Milliseconds a SQLite write waits for another writer's lock before it counts as failed.
    type: int
    default: 5000
    env:
      - name: PRODGATE_REGISTER_BUSY_TIMEOUT
    ini:
      - section: callback_change_register
        key: busy_timeout
  require_change:
    description:
      - Stop the run before any task when C(prodgate_change_id) or a valid C(prodgate_change_type) is missing.
      - A run whose C(prodgate_environment) is a production environment of the signed policy (or is not set) always
        requires it; this option extends the rule to the other environments. It cannot switch it off.
    type: bool
    default: false
    env:
      - name: PRODGATE_REGISTER_REQUIRE_CHANGE
    ini:
      - section: callback_change_register
        key: require_change
"""

import os
import socket
import subprocess
import threading
import time
import uuid

from ansible import context
from ansible.module_utils.ansible_release import __version__ as ansible_version
from ansible.plugins.callback import CallbackBase
from ansible.template import Templar

try:
    from ansible.utils.vars import load_extra_vars
    from ansible.parsing.dataloader import DataLoader
except ImportError:  # pragma: no cover
    load_extra_vars = None

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.change import RUN_VARIABLES, build_change
from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import load_settings, real_user
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError, RegisterError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import utc_stamp
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.release import sha256_file
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.record import build_intent, build_outcome, plain, run_metadata, validate_change
from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import load_trusted_policy, skipping_options
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import DEFAULT_ANCHOR, DEFAULT_JOURNAL_DIR, DEFAULT_KEY, RegisterWriter
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import DEFAULT_SQLITE_PATH as DEFAULT_DB

EXIT_UNAVAILABLE = 69  # pre-flight failed: nothing ran
EXIT_IOERR = 74  # a write failed mid-run: the run stopped before the next task


def _task_info(task, check_default):
    role = getattr(task, "_role", None)
    check_mode = getattr(task, "check_mode", None)
    no_log = getattr(task, "no_log", None)
    return {
        "name": plain(task.get_name()),
        "uuid": str(getattr(task, "_uuid", "")),
        "module": plain(getattr(task, "resolved_action", None) or task.action),
        "role": plain(role.get_name()) if role is not None else None,
        "check_mode": check_mode if isinstance(check_mode, bool) else check_default,
        # a templated no_log is resolved on the worker; the censored result tells us then
        "no_log": no_log if isinstance(no_log, bool) else False,
        "handler": type(task).__name__ == "Handler",
        "tags": plain(sorted(str(t) for t in (getattr(task, "tags", None) or []))),
    }


def _git_revision(directory):
    try:
        out = subprocess.run(["git", "-C", directory, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _sha256_file(path):
    try:
        return sha256_file(path)
    except OSError:
        return None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "prodgate.deploy.change_register"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._lock = threading.RLock()
        self._writer = None
        self._run_id = None
        self._tasks = {}
        self._starts = {}
        self._pending = []
        self._check = False
        self._spent = 0.0
        self._writes = 0
        self._change = None
        self._policy_doc = None

    # -- helpers ---------------------------------------------------------------------------------
    def _stop(self, code, why):
        self._display.error(f"prodgate.deploy.change_register: {why}")
        raise SystemExit(code)

    def _write(self, *bodies):
        """Write (with any batched minimal outcomes); stop the run if the register is broken."""
        with self._lock:
            started = time.perf_counter()
            batch = self._pending + list(bodies)
            self._pending = []
            try:
                self._writer.append(batch)
            except Exception as exc:  # pylint: disable=broad-except  # e.g. the journal itself cannot be written
                self._writer.broken = self._writer.broken or f"{type(exc).__name__}: {exc}"
            self._spent += time.perf_counter() - started
            self._writes += 1
            if self._writer.broken:
                return False
        return True

    def _stop_if_broken(self, closed=False):
        writer = self._writer
        if writer is None or not writer.broken:
            return
        if not closed:
            # The run-close goes to the journal too, so the imported run shows why it ended.
            writer.append([{"kind": "run_close", "run": self._run_id, "ts": utc_stamp(), "stats": None, "failed_hosts": [],
                            "unfinished": len(self._starts), "aborted": f"register write failed: {writer.broken}"}])
        self._writer = None
        writer.close()
        self._stop(EXIT_IOERR, f"a register write failed ({writer.broken}); the entries are kept in the journal "
                               f"{writer.journal.path if writer.journal else '(none)'}. No further task starts (fail "
                               "closed, Art. 27). Restore the register, then run `prodgate register import-journal` "
                               "before the next run.")

    @staticmethod
    def _parts(result):
        host = getattr(result, "host", None) or result._host
        task = getattr(result, "task", None) or result._task
        res = getattr(result, "result", None)
        if res is None:
            res = result._result
        return host, task, res

    @staticmethod
    def _policy(settings):
        """The signed policy for the change types and production environments, or None when it cannot be
        read (the run then needs a valid change registration, and the gate refuses the change)."""
        if not settings.policy:
            return None
        try:
            return load_trusted_policy(settings)[0]  # the one trusted load; unpinned counts as unreadable here
        except ProdgateError:
            return None

    # -- run -------------------------------------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        args = context.CLIARGS
        self._check = bool(args.get("check"))
        extra_vars = {}
        if load_extra_vars is not None:
            try:
                extra_vars = plain(load_extra_vars(DataLoader()))
            except Exception as exc:  # pylint: disable=broad-except
                self._stop(EXIT_UNAVAILABLE, f"cannot read the run's extra vars to record the change: {exc}")
        env = dict(os.environ)
        meta = run_metadata(extra_vars, env)
        name = getattr(playbook, "_file_name", "") or ""
        adhoc = name == "__adhoc_playbook__"  # the `ansible` command (bin_ansible_callbacks = True)
        path = name if adhoc else os.path.abspath(name)
        if not meta["project_revision"]:
            meta["project_revision"] = _git_revision(os.getcwd() if adhoc else os.path.dirname(path))
        self._run_id = uuid.uuid4().hex
        self._tasks, self._starts, self._pending = {}, {}, []
        run_open = {
            "kind": "run_open",
            "run": self._run_id,
            "ts": utc_stamp(),
            "playbook": path,
            "playbook_sha256": None if adhoc else _sha256_file(path),
            "adhoc": adhoc,
            "controller": socket.gethostname(),
            "user": real_user(),
            "pid": os.getpid(),
            "ansible_version": ansible_version,
            "check_mode": self._check,
            "diff_mode": bool(args.get("diff")),
            "limit": plain(args.get("subset")),
            "inventory": plain(list(args.get("inventory") or [])),
            "tags": plain(list(args.get("tags") or [])),
            "change": meta["change"],
            "awx": meta["awx"],
            "project_revision": meta["project_revision"],
        }
        try:
            settings = load_settings()
        except ProdgateError as exc:
            self._stop(EXIT_UNAVAILABLE, f"no task was run: {exc}")
        self._policy_doc = self._policy(settings)
        problems = validate_change(meta["change"], self._policy_doc)
        run_open["change_problems"] = problems
        self._change = meta["change"]
        db = settings.register_db or DEFAULT_DB
        if settings.awx:
            kept = {"register.db": str(db).startswith(("postgres", "host=")), "register.anchor": settings.register_anchor,
                    "register.journal_dir": settings.register_journal_dir}
            lost = [name for name, ok in kept.items() if not ok]
            if lost:
                self._stop(EXIT_UNAVAILABLE, f"this is an AWX job and {', '.join(lost)} would die with the job's container: the "
                                             "AWX credential 'prodgate change register' must inject PRODGATE_REGISTER_DB (a "
                                             "postgresql:// register), PRODGATE_REGISTER_ANCHOR and "
                                             "PRODGATE_REGISTER_JOURNAL_DIR on a persistent volume (docs/awx.md)")
        self._writer = RegisterWriter(
            url=db, signing_key=settings.register_signing_key or DEFAULT_KEY,
            anchor=settings.register_anchor or DEFAULT_ANCHOR, journal_dir=settings.register_journal_dir or DEFAULT_JOURNAL_DIR,
            witness=settings.register_witness,
            busy_timeout_ms=self.get_option("busy_timeout"), durability=self.get_option("durability"))
        try:
            self._writer.preflight(run_open)
        except RegisterError as exc:
            self._stop(EXIT_UNAVAILABLE, f"register pre-flight failed, no task was run: {exc}")
        except Exception as exc:  # pylint: disable=broad-except  # Ansible would only warn: fail closed instead
            self._stop(EXIT_UNAVAILABLE, f"register pre-flight failed, no task was run: {type(exc).__name__}: {exc}")

    def v2_playbook_on_play_start(self, play):
        """A change set in inventory or play vars (not as extra vars) reaches the register too: the
        play's view of the change (its first host's variables) is recorded when it adds to the run's."""
        if self._writer is None:
            return
        try:
            play_vars = self._play_change_vars(play)
        except Exception:  # pylint: disable=broad-except  # the gate still decides; the register keeps the extra vars
            play_vars = {}
        change = build_change(run_vars=play_vars).register_fields()
        known = self._change or {}
        merged = {k: (v if v not in (None, [], "") else known.get(k)) for k, v in change.items()}
        if merged != known:
            self._change = merged
            self._write({"kind": "run_change", "run": self._run_id, "ts": utc_stamp(), "play": plain(play.get_name()),
                         "change": plain(merged)})
        problems = validate_change(merged, self._policy_doc)
        policy = self._policy_doc
        production = policy is None or policy.is_production(merged.get("environment"))
        required = self.get_option("require_change") or production
        skipping = skipping_options(context.CLIARGS) if production else []
        why = None
        if problems and required:
            why = (f"the run has no valid change registration (required in production, and whenever the controller's "
                   f"policy cannot be read); no task was run: {problems[0]}")
        elif skipping:
            why = (f"{', '.join(skipping)} is refused for a production change: it would skip the change window and the "
                   "approval gate; run the whole playbook (use --tags or --limit to narrow it, the controls always run)")
        if why:
            self._write({"kind": "run_close", "run": self._run_id, "ts": utc_stamp(), "stats": None, "failed_hosts": [],
                         "unfinished": 0, "aborted": why})
            self._writer.checkpoint()
            self._writer.close()
            self._writer = None
            self._stop(EXIT_UNAVAILABLE, why)

    @staticmethod
    def _play_change_vars(play):
        manager, loader = play.get_variable_manager(), play.get_loader()
        hosts = manager._inventory.get_hosts(play.hosts)  # pylint: disable=protected-access
        if not hosts:
            return {}
        variables = manager.get_vars(play=play, host=hosts[0], include_hostvars=False)
        templar = Templar(loader=loader, variables=variables)
        return {var: plain(templar.template(variables[var])) for var in RUN_VARIABLES.values() if var in variables}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._stop_if_broken()
        self._tasks[str(task._uuid)] = _task_info(task, self._check)

    def v2_playbook_on_handler_task_start(self, task):
        self._stop_if_broken()
        info = _task_info(task, self._check)
        info["handler"] = True
        self._tasks[str(task._uuid)] = info

    def _info(self, task):
        info = self._tasks.get(str(task._uuid))
        if info is None:
            info = self._tasks[str(task._uuid)] = _task_info(task, self._check)
        return info

    def v2_runner_on_start(self, host, task):
        if self._writer is None:
            return
        self._stop_if_broken()
        name = plain(host.get_name())
        info = self._info(task)
        self._starts[(name, info["uuid"])] = time.monotonic()
        if not self._write(build_intent(self._run_id, name, info, utc_stamp())):
            # The intent is journaled; the worker for this host has not been started yet.
            self._stop_if_broken()

    def _outcome(self, result, status, ignored=False):
        if self._writer is None:
            return
        try:
            self._record_outcome(result, status, ignored)
        except Exception as exc:  # pylint: disable=broad-except  # never lose an outcome silently
            self._writer.broken = self._writer.broken or f"cannot record an outcome: {type(exc).__name__}: {exc}"

    def _record_outcome(self, result, status, ignored):
        host, task, res = self._parts(result)
        name = plain(host.get_name())
        info = self._info(task)
        started = self._starts.pop((name, info["uuid"]), None)
        duration = int((time.monotonic() - started) * 1000) if started is not None else None
        changed = bool(res.get("changed")) if hasattr(res, "get") else False
        detail = True
        if status == "ok" and not changed:
            detail = self.get_option("record_ok")
        elif status == "skipped":
            detail = self.get_option("record_skipped")
        entry = build_outcome(self._run_id, name, info, status, plain(res), utc_stamp(), duration_ms=duration,
                              diff_mode=self.get_option("diff_storage"), detail=detail)
        if ignored:
            entry["ignored"] = True
        if not detail:
            with self._lock:
                self._pending.append(entry)
            return
        self._write(entry)

    def v2_runner_on_ok(self, result):
        self._outcome(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._outcome(result, "failed", ignored=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._outcome(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._outcome(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        if self._writer is None:
            return
        per_host = {}
        for host in sorted(stats.processed.keys()):
            per_host[plain(host)] = plain(stats.summarize(host))
        failed_hosts = sorted(h for h, s in per_host.items() if s.get("failures") or s.get("unreachable"))
        close = {"kind": "run_close", "run": self._run_id, "ts": utc_stamp(), "stats": per_host,
                 "failed_hosts": failed_hosts, "unfinished": len(self._starts)}
        self._write(close)
        seq = self._writer.checkpoint()
        if self._writer.broken:
            self._stop_if_broken(closed=True)
        self._writer.close()
        self._writer = None
        self._display.vv(f"prodgate.deploy.change_register: run {self._run_id} recorded, checkpoint entry {seq}; "
                         f"{self._writes} writes took {self._spent:.3f} s")
