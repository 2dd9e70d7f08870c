"""The change register at scale (issue 16, deliverable 4): queries on 100,000 and 1,000,000 entries.

Builds SQLite registers of the given sizes with the real core code (``register.record`` builders,
``base.canonical_json``, ``register.chain.chain`` and signed ``make_checkpoint`` after every run, as the
callback writes them: run_open, an intent and an outcome per host and task, run_close,
checkpoint), then runs each `prodgate register` query as its own process and prints wall time and
peak RSS (the process's ru_maxrss):

    verify     the whole chain and every checkpoint signature (entries/s)
    runs       the last 50 runs
    changes    the last 50 changes of one host
    form       the Art. 27 form of one change
    export     every change of one system as CSV to a file

    .venv/bin/python bench/register_scale.py [--sizes 100000,1000000] [--keep DIR] [--json FILE]

Targets: verify >= 200,000 entries/s; peak memory flat as the register grows (the same at
100,000 and 1,000,000 entries, give or take the interpreter). Prints figures; asserts nothing.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, ".venv", "bin")
sys.path.insert(0, os.path.join(REPO, "plugins"))

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import chain, generate_key, make_checkpoint  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.record import build_intent, build_outcome  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import canonical_json  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import verify_register  # noqa: E402  pylint: disable=wrong-import-position

HOSTS, TASKS, FORKS = 50, 20, 10
SYSTEMS = ("crm", "ledger", "portal")
VERIFY_TARGET = 200_000


def _ts(second):
    day, rest = divmod(second, 86400)
    return f"2026-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}.000000Z"


def run_bodies(n, clock):
    """The canonical bodies of run ``n`` as the callback writes them (without the checkpoint)."""
    run_id = f"{n:032x}"
    system = SYSTEMS[n % len(SYSTEMS)]
    change = {"id": f"CHG-{n:06d}", "type": "routine", "system": system, "environment": "production",
              "version": f"1.{n // 100}.{n % 100}", "implementers": ["ivan", "jane"], "supervisor": "sam"}
    out = [canonical_json({"kind": "run_open", "run": run_id, "ts": _ts(clock), "playbook": "/srv/prodgate/playbooks/upgrade.yml",
                           "playbook_sha256": "ab" * 32, "adhoc": False, "controller": "ctl1", "user": "ivan", "pid": 4242,
                           "ansible_version": "2.19.14", "check_mode": False, "diff_mode": False, "limit": None,
                           "inventory": ["inventories/prod"], "tags": [], "change": change, "awx": None,
                           "project_revision": "0123456789abcdef", "change_problems": []})]
    hosts = [f"{system}{h:03d}" for h in range(HOSTS)]
    for t in range(TASKS):
        task = {"name": f"Change {t}", "uuid": f"{run_id[:20]}-{t:04d}", "module": "ansible.builtin.template",
                "role": "release", "check_mode": False}
        for start in range(0, HOSTS, FORKS):
            batch = hosts[start:start + FORKS]
            clock += 1
            out += [canonical_json(build_intent(run_id, host, task, _ts(clock))) for host in batch]
            for host in batch:
                result = {"changed": True, "invocation": {"module_args": {"src": "config.ini.j2", "dest": f"/srv/{system}/config.ini",
                                                                          "mode": "0644"}},
                          "diff": [{"before": "port=8080\n", "after": f"port=80{t:02d}\n", "before_header": "config.ini",
                                    "after_header": "config.ini"}]}
                out.append(canonical_json(build_outcome(run_id, host, task, "ok", result, _ts(clock), duration_ms=40)))
    per_host = {host: {"ok": TASKS, "changed": TASKS, "failures": 0, "unreachable": 0} for host in hosts}
    out.append(canonical_json({"kind": "run_close", "run": run_id, "ts": _ts(clock + 1), "stats": per_host,
                               "failed_hosts": [], "unfinished": 0}))
    return run_id, out, clock + 2


def build_register(path, entries, key_path):
    """A register of at least ``entries`` entries; returns (entries, runs, seconds)."""
    started = time.perf_counter()
    store = open_store(path)
    store.migrate()
    register_id = store.register_id()
    key = generate_key(key_path)
    seq, prev, n, clock = 0, "0" * 64, 0, 0
    rows = []
    while seq < entries:
        run_id, bodies, clock = run_bodies(n, clock)
        for p, h, b in chain(prev, bodies):
            seq += 1
            rows.append((seq, p, h, b))
            prev = h
        cp = canonical_json(make_checkpoint(key, register_id, seq, prev, run_id=run_id, ts=_ts(clock), open_runs=[]))
        ((p, h, b),) = chain(prev, [cp])
        seq += 1
        rows.append((seq, p, h, b))
        prev = h
        n += 1
        if len(rows) >= 50_000:
            with store.write_txn():
                store._insert_many(rows)  # pylint: disable=protected-access
            rows = []
    if rows:
        with store.write_txn():
            store._insert_many(rows)  # pylint: disable=protected-access
    store.close()
    return seq, n, time.perf_counter() - started


def measure(argv, env):
    """Wall seconds, CPU seconds, peak RSS (MiB), exit code and output of one command."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)  # pylint: disable=consider-using-with
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return (elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status),
                out.read().decode(), err.read().decode())


def verify_in_process(db):
    """verify_register over the whole register in this process: (entries, wall s, CPU s, ok)."""
    with open_store(db) as store:
        wall, cpu = time.perf_counter(), time.process_time()
        report = verify_register(store)
        return report["entries"], time.perf_counter() - wall, time.process_time() - cpu, report["ok"]


def queries(db, key_path, runs, work):
    last = runs - 1
    system = SYSTEMS[last % len(SYSTEMS)]
    prodgate = os.path.join(BIN, "prodgate")
    return [
        ("verify", [prodgate, "register", "verify", "--db", db, "--trusted-key", key_path + ".pub", "--allow-unanchored",
                    "--json"]),
        ("runs", [prodgate, "register", "runs", "--db", db]),
        ("changes", [prodgate, "register", "changes", "--db", db, "--host", f"{system}007"]),
        ("form", [prodgate, "register", "form", "--db", db, f"CHG-{runs // 2:06d}"]),
        ("export", [prodgate, "register", "export", "--db", db, "--system", system, "--format", "csv",
                    "-o", os.path.join(work, "export.csv")]),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000", help="comma list of register sizes (entries)")
    ap.add_argument("--keep", help="build the registers in this directory and keep them (reused when present)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.keep or tempfile.mkdtemp(prefix="prodgate-scale-")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
               PRODGATE_REGISTER_ANCHOR=os.path.join(work, "anchor-{register_id}.json"))
    env.pop("PRODGATE_REGISTER_DB", None)
    figures = {}
    try:
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s) at the start")
        for size in sizes:
            db, key_path = os.path.join(work, f"register-{size}.db"), os.path.join(work, f"key-{size}.pem")
            meta = os.path.join(work, f"register-{size}.json")
            if os.path.exists(meta) and os.path.exists(db):
                with open(meta, encoding="utf-8") as fh:
                    built = json.load(fh)
                print(f"\nregister of {built['entries']:,} entries ({built['runs']} runs), reused from {db}")
            else:
                for stale in (db, key_path, key_path + ".pub"):
                    if os.path.exists(stale):
                        os.remove(stale)
                entries, runs, secs = build_register(db, size, key_path)
                built = {"entries": entries, "runs": runs, "build_seconds": secs}
                with open(meta, "w", encoding="utf-8") as fh:
                    json.dump(built, fh)
                print(f"\nregister of {entries:,} entries ({runs} runs of {HOSTS} hosts x {TASKS} tasks) built in {secs:.1f} s "
                      f"({entries / secs:,.0f} entries/s, {os.path.getsize(db) / 2**20:.0f} MiB)")
            figures[size] = {"entries": built["entries"], "runs": built["runs"]}
            for name, argv in queries(db, key_path, built["runs"], work):
                secs, cpu, rss, code, out, err = measure(argv, env)
                line = f"  {name:8} {secs:7.2f} s wall {cpu:7.2f} s CPU   peak RSS {rss:7.1f} MiB   exit {code}"
                row = {"seconds": secs, "cpu_seconds": cpu, "peak_rss_mib": rss, "exit": code}
                if name == "verify":
                    report = json.loads(out)
                    rate = report["entries"] / secs
                    row.update({"entries_per_second_wall": rate, "entries_per_second_cpu": report["entries"] / cpu,
                                "entries_per_second_core": report["entries_per_second"], "ok": report["ok"]})
                    line += (f"\n           {rate:,.0f} entries/s (whole command, wall), {report['entries'] / cpu:,.0f} per CPU "
                             f"second, {report['entries_per_second']:,} in the check itself "
                             f"(target {VERIFY_TARGET:,}/s: {'met' if rate >= VERIFY_TARGET else 'MISSED'})")
                elif code != 0:
                    line += f"   {err.strip()[-300:]}"
                print(line, flush=True)
                figures[size][name] = row
            count, wall, cpu, ok = verify_in_process(db)
            figures[size]["verify_in_process"] = {"entries": count, "seconds": wall, "cpu_seconds": cpu, "ok": ok}
            print(f"  verify_register in process: {count / wall:,.0f} entries/s wall, {count / cpu:,.0f} entries per CPU "
                  f"second (target {VERIFY_TARGET:,}/s: {'met' if count / cpu >= VERIFY_TARGET else 'MISSED'} on CPU time)",
                  flush=True)
        print(f"load average {os.getloadavg()[0]:.1f} at the end (wall times include waiting for a CPU; CPU times do not)")
        if len(sizes) > 1:
            small, big = figures[sizes[0]], figures[sizes[-1]]
            print(f"\npeak RSS growth from {sizes[0]:,} to {sizes[-1]:,} entries:")
            for name in ("verify", "runs", "changes", "form", "export"):
                print(f"  {name:8} {small[name]['peak_rss_mib']:7.1f} -> {big[name]['peak_rss_mib']:7.1f} MiB "
                      f"(x{big[name]['peak_rss_mib'] / small[name]['peak_rss_mib']:.2f});"
                      f" time x{big[name]['seconds'] / small[name]['seconds']:.1f}")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(figures, fh, indent=2)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
