"""Change register: read side (runs, changes, the Art. 27 form, the Art. 22(5) archive, exports).

Everything is computed from the entries' hashed bodies, never from side columns, so what a
report shows is exactly what ``verify`` vouches for.
"""
import collections
import csv
import io
import json

from ..errors import RegisterError
from .record import ROLLBACK_TAG

UNKNOWN = "outcome unknown"


def load(store, like=None):
    return list(iter_entries(store, like=like))


def iter_entries(store, like=None):
    """``(seq, body)`` of the register's entries, streamed: memory does not grow with the register."""
    for seq, body in store.bodies(like=like):
        yield seq, json.loads(body)


class RegisterView:
    """Runs and changes of a register (or of the entries matching a LIKE pre-filter).

    ``keep_changes=False`` keeps the runs only (memory grows with the number of runs, not of
    entries); :meth:`stream_changes` yields the change rows of a stream of entries one by one."""

    def __init__(self, entries, keep_changes=True):
        self.runs = {}
        self.changes = []
        self.checkpoints = []
        self._keep_changes = keep_changes
        self._pending = {}
        for seq, body in entries:
            self._add(seq, body, self.changes.append)
        self._finish()

    def _add(self, seq, body, emit):
        """Take one entry; a change row goes to ``emit`` when its intent (or a lone outcome) is read."""
        kind = body.get("kind")
        run_id = body.get("run")
        if kind == "checkpoint":
            self.checkpoints.append(dict(body, seq=seq))
            if run_id in self.runs:
                self.runs[run_id]["checkpoint"] = seq
            return
        if run_id is None:
            return
        run = self.runs.setdefault(run_id, {"run": run_id, "open": None, "close": None, "checkpoint": None,
                                            "first_seq": seq, "entries": 0, "journaled": False})
        run["entries"] += 1
        if kind == "run_open":
            run["open"] = body
        elif kind == "run_change" and run["open"] is not None:
            # The change as the play saw it (inventory or play vars), recorded after run_open.
            run["open"] = dict(run["open"], change=body.get("change"))
        elif kind == "run_close":
            run["close"] = body
        elif kind == "journal_import":
            run["journaled"] = True
        elif not self._keep_changes:
            return
        elif kind == "intent":
            row = dict(body, seq=seq, status=UNKNOWN, intent_seq=seq)
            row.pop("kind", None)
            emit(row)
            self._pending.setdefault((run_id, body.get("host"), body.get("task_uuid")), []).append(row)
        elif kind == "outcome":
            key = (run_id, body.get("host"), body.get("task_uuid"))
            queue = self._pending.get(key)
            row = queue.pop(0) if queue else None
            if queue == []:
                del self._pending[key]
            if row is None:
                row = {"intent_seq": None}
                emit(row)
            row.update(body)
            row.pop("kind", None)
            row["seq"] = seq
            row["started"] = row.get("started") or body.get("ts")

    def _finish(self):
        for run in self.runs.values():
            run["state"] = run_state(run)

    @classmethod
    def stream_changes(cls, entries):
        """``(view, rows)``: ``rows`` yields the change rows of ``entries`` in the order of ``.changes``,
        each complete (its outcome read, or none can come: its run closed or the register ended);
        ``view`` holds the runs read so far (a row's run is known when the row is yielded).

        Memory holds the runs and the rows waiting for an outcome: the tasks in flight, and behind
        an intent that a killed run never answered, the rows after it until the register ends."""
        view = cls((), keep_changes=True)
        waiting = collections.deque()

        def rows():
            for seq, body in entries:
                view._add(seq, body, waiting.append)  # pylint: disable=protected-access
                if body.get("kind") == "run_close":
                    # a run's outcomes come before its close: an intent still pending stays unknown
                    run_id = body.get("run")
                    for key in [k for k in view._pending if k[0] == run_id]:  # pylint: disable=protected-access
                        del view._pending[key]  # pylint: disable=protected-access
                while waiting and not _awaits_outcome(view, waiting[0]):
                    yield waiting.popleft()
            view._pending.clear()  # pylint: disable=protected-access
            view._finish()  # pylint: disable=protected-access
            while waiting:
                yield waiting.popleft()
        return view, rows()

    def run_of(self, change_row):
        return self.runs.get(change_row.get("run"), {})


def _awaits_outcome(view, row):
    if row.get("intent_seq") is None or row.get("seq") != row.get("intent_seq"):
        return False  # a lone outcome, or the outcome was read
    queue = view._pending.get((row.get("run"), row.get("host"), row.get("task_uuid")))  # pylint: disable=protected-access
    return bool(queue) and any(pending is row for pending in queue)


def run_state(run):
    if run["close"] is None:
        return "not closed (controller stopped or killed)"
    close = run["close"]
    if close.get("aborted"):
        return "aborted: " + str(close["aborted"])
    return "failed" if close.get("failed_hosts") else "ok"


def _change_of(run):
    return ((run or {}).get("open") or {}).get("change") or {}


def run_summary(run):
    opened = run.get("open") or {}
    change = _change_of(run)
    return {
        "run": run["run"],
        "playbook": opened.get("playbook"),
        "started": opened.get("ts"),
        "ended": (run.get("close") or {}).get("ts"),
        "state": run["state"],
        "change_id": change.get("id"),
        "change_type": change.get("type"),
        "system": change.get("system"),
        "environment": change.get("environment"),
        "version": change.get("version"),
        "check_mode": opened.get("check_mode"),
        "controller": opened.get("controller"),
        "user": opened.get("user"),
        "awx_job_id": (opened.get("awx") or {}).get("job_id"),
        "awx_user": (opened.get("awx") or {}).get("user_name"),
        "entries": run["entries"],
        "checkpoint": run.get("checkpoint"),
    }


def list_runs(view):
    return [run_summary(r) for r in sorted(view.runs.values(), key=lambda r: r["first_seq"])]


def filter_changes(view, system=None, host=None, change_id=None, since=None, until=None, status=None, run=None,
                   include_unchanged=False):
    return list(select_changes(view.changes, view.run_of, system=system, host=host, change_id=change_id, since=since,
                               until=until, status=status, run=run, include_unchanged=include_unchanged))


def select_changes(rows, run_of, system=None, host=None, change_id=None, since=None, until=None, status=None, run=None,
                   include_unchanged=False):
    """The change rows that pass the filters, one by one (``run_of(row)``: the run of a row)."""
    statuses = set(status.split(",")) if status else None
    for row in rows:
        change = _change_of(run_of(row))
        if run and row.get("run") != run:
            continue
        if system and change.get("system") != system:
            continue
        if change_id and change.get("id") != change_id:
            continue
        if host and row.get("host") != host:
            continue
        ts = row.get("ts") or ""
        if since and ts < since:
            continue
        if until and ts > until:
            continue
        st = row.get("status")
        if statuses is not None:
            if st not in statuses and not ("unknown" in statuses and st == UNKNOWN):
                continue
        elif not include_unchanged and st in ("ok", "skipped") and not row.get("changed"):
            continue
        yield dict(row, change_id=change.get("id"), system=change.get("system"))


def change_view(store, change_id):
    """The view of one change's runs and the runs that roll it back (all :func:`change_form` reads),
    in two streamed passes: the run entries, then the entries of those runs only."""
    changes = {}
    for _seq, body in iter_entries(store, like='%"kind":"run_%'):
        if body.get("kind") == "run_open":
            changes[body.get("run")] = body.get("change") or {}
        elif body.get("kind") == "run_change" and body.get("run") in changes:
            changes[body.get("run")] = body.get("change") or {}
    wanted = {run for run, change in changes.items() if change_id in (change.get("id"), change.get("rollback_of"))}
    marks = [canonical_run(run) for run in wanted]

    def selected():
        for seq, text in store.bodies():
            if any(mark in text for mark in marks):
                body = json.loads(text)
                if body.get("run") in wanted:
                    yield seq, body
    return RegisterView(selected())


def canonical_run(run_id):
    """How a run id appears in an entry's canonical JSON (a quick test before parsing the entry)."""
    return '"run":' + json.dumps(run_id, ensure_ascii=False)


CHANGE_COLUMNS = ["seq", "ts", "run", "change_id", "system", "host", "task", "module", "status", "changed",
                  "check_mode", "censored", "duration_ms"]


def show_run(view, run_id):
    matches = [r for r in view.runs if r == run_id or r.startswith(run_id)]
    if not matches:
        raise RegisterError(f"no run {run_id!r} in the register: list runs with `prodgate register runs`")
    if len(matches) > 1:
        raise RegisterError(f"run prefix {run_id!r} is ambiguous ({len(matches)} runs): give more characters")
    run = view.runs[matches[0]]
    changes = [c for c in view.changes if c.get("run") == matches[0]]
    return {"run": run_summary(run), "open": run.get("open"), "close": run.get("close"), "tasks": changes}


def _evidence(changes, kind):
    return [dict(c["evidence"], host=c.get("host"), seq=c.get("seq")) for c in changes
            if (c.get("evidence") or {}).get("type") == kind]


def change_form(view, change_id):
    """The production change registration form of Art. 27 for one change id."""
    runs = [r for r in sorted(view.runs.values(), key=lambda r: r["first_seq"]) if _change_of(r).get("id") == change_id]
    if not runs:
        raise RegisterError(f"no run of change {change_id!r} in the register: was -e prodgate_change_id={change_id} passed?")
    rollbacks = [r for r in view.runs.values() if _change_of(r).get("rollback_of") == change_id]
    run_ids = {r["run"] for r in runs}
    changes = [c for c in view.changes if c.get("run") in run_ids]
    change = _change_of(runs[-1])
    per_host = {}
    for c in changes:
        if c.get("status") in ("ok", "skipped") and not c.get("changed"):
            continue
        per_host.setdefault(c.get("host"), []).append({
            "seq": c.get("seq"), "task": c.get("task"), "module": c.get("module"), "status": c.get("status"),
            "changed": c.get("changed"), "check_mode": c.get("check_mode"), "censored": c.get("censored", False),
            "args": c.get("args"), "diff": c.get("diff"), "items": c.get("items"), "msg": c.get("msg"),
        })
    return {
        "change_id": change_id,
        "request": {
            "type": change.get("type"), "system": change.get("system"), "environment": change.get("environment"),
            "version": change.get("version"),
            "requested_by": [((r.get("open") or {}).get("awx") or {}).get("user_name") or (r.get("open") or {}).get("user")
                             for r in runs],
        },
        "approvals": _evidence(changes, "approval_gate"),
        "window": _evidence(changes, "change_window"),
        "implementers": change.get("implementers") or [],
        "supervisor": change.get("supervisor"),
        # the people the approval gate verified (signed acknowledgements), when the run used it
        "verified_implementers": sorted({p for ev in _evidence(changes, "approval_gate") for p in ev.get("implementers") or []}),
        "verified_supervisor": next((ev.get("supervisor") for ev in _evidence(changes, "approval_gate") if ev.get("supervisor")), None),
        "runs": [dict(run_summary(r), stats=(r.get("close") or {}).get("stats")) for r in runs],
        "per_host": per_host,
        "results": {r["run"]: r["state"] for r in runs},
        "rollback": [run_summary(r) for r in rollbacks],
        # hosts switched back to an earlier release inside this change's runs (automatic rollback)
        "rolled_back": _rolled_back(changes),
    }


def _rolled_back(changes):
    out = []
    for c in changes:
        if ROLLBACK_TAG in (c.get("tags") or []) and c.get("changed") and c.get("status") == "ok":
            src = (c.get("args") or {}).get("src")
            out.append({"host": c.get("host"), "seq": c.get("seq"), "run": c.get("run"), "task": c.get("task"),
                        "to": src.rstrip("/").rsplit("/", 1)[-1] if isinstance(src, str) and src else None})
    return out


def system_archive(view, system):
    """The operations archive of Art. 22(5): current version and configuration, history, failures."""
    runs = [r for r in sorted(view.runs.values(), key=lambda r: r["first_seq"]) if _change_of(r).get("system") == system]
    if not runs:
        raise RegisterError(f"no run for system {system!r} in the register: runs carry it from -e prodgate_system=...")
    applied = [r for r in runs if r["state"] == "ok" and not (r.get("open") or {}).get("check_mode")]
    current = applied[-1] if applied else None
    run_ids = {r["run"] for r in runs}
    config = {}
    failures = []
    for c in view.changes:
        if c.get("run") not in run_ids:
            continue
        if c.get("status") in ("failed", "unreachable", UNKNOWN):
            failures.append({k: c.get(k) for k in ("seq", "ts", "run", "host", "task", "module", "status", "msg")})
        elif c.get("changed") and not c.get("check_mode"):
            config.setdefault(c.get("host"), {})[c.get("task") or c.get("module")] = {
                "seq": c.get("seq"), "ts": c.get("ts"), "module": c.get("module"),
                "args": c.get("args"), "censored": c.get("censored", False)}
    for r in runs:
        if r["state"] != "ok":
            failures.append({"run": r["run"], "ts": (r.get("open") or {}).get("ts"), "status": r["state"]})
    return {
        "system": system,
        "current_version": _change_of(current).get("version") if current else None,
        "last_change": run_summary(current) if current else None,
        "configuration": config,
        "history": [run_summary(r) for r in runs],
        "failures": failures,
    }


def _to_text(write, rows, columns):
    """What ``write(rows, out, columns)`` writes, as a string."""
    buf = io.StringIO()
    write(rows, buf, columns)
    return buf.getvalue()


def _write_rows(rows, write_row):
    """Write the rows one by one with ``write_row``; returns how many."""
    count = 0
    for row in rows:
        write_row(row)
        count += 1
    return count


def to_csv(rows, columns=None):
    return _to_text(write_csv, rows, columns)


def write_csv(rows, out, columns=None):
    """Write the rows as CSV to ``out`` one by one; returns how many."""
    columns = columns or CHANGE_COLUMNS
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    return _write_rows(rows, lambda row: writer.writerow({k: row.get(k) for k in columns}))


def to_markdown(rows, columns=None):
    return _to_text(write_markdown, rows, columns)


def write_markdown(rows, out, columns=None):
    """Write the rows as a Markdown table to ``out`` one by one; returns how many."""
    columns = columns or CHANGE_COLUMNS

    def cell(v):
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")
    out.write("| " + " | ".join(columns) + " |\n" + "|" + "---|" * len(columns) + "\n")
    return _write_rows(rows, lambda r: out.write("| " + " | ".join(cell(r.get(c)) for c in columns) + " |\n"))


def form_markdown(form):
    out = [f"# Production change registration form: {form['change_id']}", "", "Art. 27 of the deployment policy.", "",
           "## Request", ""]
    if form.get("gate"):
        out[-2:-2] = ["## Gate", "", f"- {form['gate']['text']}", ""]
    for k, v in form["request"].items():
        out.append(f"- {k}: {v if not isinstance(v, list) else ', '.join(str(x) for x in v)}")
    out += ["", "## Approvals (verified by prodgate.deploy.approval_gate)", ""]
    if form["approvals"]:
        for ev in form["approvals"]:
            if ev.get("performed_stage"):
                pending = ", ".join(p.get("stage", "?") for p in ev.get("pending_stages") or []) or "none"
                out.append(f"- gate passed for the {ev['performed_stage']} stage "
                           f"({'approvals consumed' if ev.get('consumed') else 'approvals not consumed'}; pending: {pending})")
            for a in ev.get("approvals") or []:
                out.append(f"- {a.get('stage')} / {a.get('role')}: {a.get('person')} at {a.get('issued_at')} (key {a.get('key_id')})")
    else:
        out.append("- none recorded")
    out += ["", "## Window", ""]
    out += [f"- allowed: {w.get('allowed')}, window: {json.dumps(w.get('window'), sort_keys=True)}, override used: "
            f"{w.get('override_used')}" for w in form["window"]] or ["- none recorded"]
    out += ["", "## People", "", f"- implementers: {', '.join(form['implementers']) or 'none recorded'}",
            f"- supervisor on site: {form['supervisor'] or 'none recorded'}",
            f"- verified by the approval gate: implementers {', '.join(form['verified_implementers']) or 'none'}, "
            f"supervisor {form['verified_supervisor'] or 'none'}", "", "## Runs", ""]
    for r in form["runs"]:
        out.append(f"- {r['run']} {r['started']} .. {r['ended']}: {r['state']}" + (" (check mode)" if r.get("check_mode") else ""))
    out += ["", "## Per host: before and after", ""]
    for host, items in sorted(form["per_host"].items(), key=lambda kv: str(kv[0])):
        out.append(f"### {host}")
        for it in items:
            out.append(f"- entry {it['seq']}: {it['task']} ({it['module']}): {it['status']}"
                       + (" changed" if it.get("changed") else "") + (" [censored: no_log]" if it.get("censored") else ""))
            for d in it.get("diff") or []:
                out.append("  ```diff")
                out.append(f"  --- {d.get('before_header', 'before')}\n  +++ {d.get('after_header', 'after')}")
                for side, sign in (("before", "-"), ("after", "+")):
                    val = d.get(side)
                    if val is not None:
                        text = val if isinstance(val, str) else json.dumps(val, sort_keys=True)
                        out += [f"  {sign}{line}" for line in text.splitlines()]
                    elif d.get(side + "_sha256"):
                        out.append(f"  {sign} sha256 {d[side + '_sha256']}")
                if d.get("prepared"):
                    out += [f"  {line}" for line in str(d["prepared"]).splitlines()]
                out.append("  ```")
        out.append("")
    out += ["## Rollback", ""]
    lines = [f"- {r['host']}: switched back to {r['to'] or 'the earlier release'} in this change "
             f"(entry {r['seq']}: {r['task']})" for r in form.get("rolled_back", [])]
    lines += [f"- rollback change run {r['run']} {r['started']}: {r['state']}" for r in form["rollback"]]
    out += lines or ["- none"]
    return "\n".join(out) + "\n"
