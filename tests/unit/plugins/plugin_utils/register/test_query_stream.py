"""Streamed register queries give exactly what the in-memory view gives, holding only what is in flight."""
import io

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.query import (
    RegisterView, change_form, change_view, filter_changes, list_runs, select_changes, write_csv, to_csv
)
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.record import build_intent, build_outcome
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import canonical_json
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store

COPY = {"name": "Config", "uuid": "c", "module": "ansible.builtin.copy", "role": "app"}
SLOW = {"name": "Slow", "uuid": "s", "module": "ansible.builtin.command", "role": None}


def _entries():
    """Two interleaved runs (forks), a killed run with an unanswered intent, a lone outcome."""
    out = []
    for run, change in (("r1", "CHG-1"), ("r2", "CHG-2"), ("r3", "CHG-3")):
        out.append({"kind": "run_open", "run": run, "ts": "2026-01-01T00:00:00Z", "user": "ops", "check_mode": False,
                    "change": {"id": change, "system": "ta", "rollback_of": "CHG-1" if run == "r3" else None}})
    for host in ("h1", "h2"):
        out.append(build_intent("r1", host, COPY, "t1"))
        out.append(build_intent("r2", host, SLOW, "t1"))
    out.append(build_intent("r3", "h9", SLOW, "t1"))  # r3 is killed: this intent never gets an outcome
    for host in ("h2", "h1"):  # outcomes in another order than the intents
        out.append(build_outcome("r1", host, COPY, "ok", {"changed": True}, "t2"))
        out.append(build_outcome("r2", host, SLOW, "failed", {"changed": False, "msg": "boom"}, "t2"))
    out.append(build_outcome("r1", "h3", COPY, "ok", {"changed": True}, "t3"))  # lone outcome (journal gap)
    out.append({"kind": "run_close", "run": "r1", "ts": "t4", "stats": {}, "failed_hosts": []})
    out.append(build_intent("r2", "h1", COPY, "t5"))  # r2 closes with this intent unanswered
    out.append({"kind": "run_close", "run": "r2", "ts": "t6", "stats": {}, "failed_hosts": ["h1", "h2"]})
    out.append({"kind": "checkpoint", "run": "r2", "ts": "t6", "count": 0})
    return list(enumerate(out, 1))


def test_streamed_changes_are_the_views_changes_in_the_same_order():
    whole = RegisterView(_entries())
    view, rows = RegisterView.stream_changes(iter(_entries()))
    streamed = list(rows)
    assert streamed == whole.changes
    assert [(r["run"], r["host"], r["status"]) for r in streamed if r["status"] == "outcome unknown"] == \
        [("r3", "h9", "outcome unknown"), ("r2", "h1", "outcome unknown")]
    assert list(select_changes(streamed, view.run_of, include_unchanged=True)) == \
        filter_changes(whole, include_unchanged=True)
    assert list_runs(view) == list_runs(whole)


def test_a_row_is_yielded_once_its_outcome_is_read_not_at_the_end():
    read = []

    def feed():
        for seq, body in _entries():
            read.append(seq)
            yield seq, body
    _view, rows = RegisterView.stream_changes(feed())
    first = next(rows)
    assert (first["run"], first["host"], first["status"]) == ("r1", "h1", "ok")
    assert read[-1] == first["seq"]  # read up to the outcome of the first intent, no further
    assert read[-1] < len(_entries())


def test_runs_only_view_keeps_no_changes_and_the_same_runs():
    light = RegisterView(_entries(), keep_changes=False)
    assert light.changes == [] and list_runs(light) == list_runs(RegisterView(_entries()))


def test_form_from_the_changes_runs_only_is_the_form_of_the_whole_register(tmp_path):
    store = open_store(str(tmp_path / "r.db"))
    store.migrate()
    store.append([canonical_json(body) for _seq, body in _entries()])
    for change in ("CHG-1", "CHG-2"):
        assert change_form(change_view(store, change), change) == change_form(RegisterView(_entries()), change)
    assert [r["run"] for r in change_form(change_view(store, "CHG-1"), "CHG-1")["rollback"]] == ["r3"]
    assert list(store.bodies(batch=3)) == list(store.bodies())  # batches join seamlessly
    assert len(list(store.bodies(like='%"kind":"intent"%', batch=2))) == 6
    store.close()


def test_csv_is_written_row_by_row():
    rows = ({"seq": n, "task": f"t{n}"} for n in range(3))
    buf = io.StringIO()
    assert write_csv(rows, buf) == 3
    assert buf.getvalue() == to_csv([{"seq": n, "task": f"t{n}"} for n in range(3)])
