"""Switch-over time: writes refused until writes accepted on the new primary (Art. 31).

Acceptance (issue 7): at most 30 s in the lab. A writer inserts a row every 50 ms through a
libpq multi-host address (target_session_attrs=read-write, so it always looks for the writable
host, as an application using the address file would after its reload) while
`playbooks/switchover.yml` runs; the figure is the time from the first refused write to the
first write accepted by the new primary.

Run on the lab (after `make lab-up LIMIT=db1,db2,backup1,app1` and the data tier is prepared):
    .venv/bin/python bench/switchover_bench.py --inventory inventories/lab/hosts.yml \
        --hosts 10.89.77.21,10.89.77.22 --password-file ~/.local/state/prodgate/lab-secrets/app [--rounds 2] [--json]
`--rounds 2` switches over and back. Not part of molecule or pytest: it needs a running replica set.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent


class Writer(threading.Thread):
    """Inserts a row every `interval` seconds; records (monotonic time, ok, server address)."""

    def __init__(self, conninfo, interval):
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.interval = interval
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        conn = None
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                row = conn.execute(
                    "INSERT INTO prodgate_switchover_bench (written_at) VALUES (clock_timestamp())"
                    " RETURNING host(inet_server_addr())"
                ).fetchone()
                self.samples.append((now, True, row[0]))
            except psycopg.Error as exc:
                self.samples.append((now, False, type(exc).__name__))
                if conn is not None:
                    conn.close()
                conn = None
            self.stop.wait(self.interval)
        if conn is not None:
            conn.close()


def outage(samples, since):
    """Seconds from the first refused write after `since` to the first accepted one after it."""
    first_refused = next((s for s in samples if s[0] >= since and not s[1]), None)
    if first_refused is None:
        return None, None, None
    first_ok = next((s for s in samples if s[0] > first_refused[0] and s[1]), None)
    if first_ok is None:
        return None, first_refused, None
    return first_ok[0] - first_refused[0], first_refused, first_ok


def last_ok_before(samples, moment):
    """Server that accepted the last write before `moment`."""
    return next((s[2] for s in reversed(samples) if s[1] and s[0] < moment), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", action="append",
                        help="inventory for ansible-playbook (repeatable; default the lab's)")
    parser.add_argument("--hosts", required=True, help="addresses of the replication set, comma separated")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="app")
    parser.add_argument("--dbname", default="appdb")
    parser.add_argument("--password-file", help="file holding the user's password (else PGPASSWORD)")
    parser.add_argument("--rounds", type=int, default=1, help="switch-overs to run (2 = over and back)")
    parser.add_argument("--target", type=float, default=30.0, help="fail above this many seconds")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    password = Path(args.password_file).read_text().strip() if args.password_file else os.environ.get("PGPASSWORD", "")
    conninfo = (
        f"host={args.hosts} port={args.port} user={args.user} dbname={args.dbname} password={password}"
        " target_session_attrs=read-write connect_timeout=2"
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS prodgate_switchover_bench"
            " (id bigserial PRIMARY KEY, written_at timestamptz NOT NULL)"
        )

    inventories = args.inventory or [str(ROOT / "inventories/lab/hosts.yml")]
    # Each switch-over is a gated change (issue 11): signed with the lab's approval world.
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from lab_world import LAB_HOSTS, LabWorld  # pylint: disable=import-outside-toplevel,import-error
    stamp = time.strftime("%Y%m%d%H%M%S")
    world = LabWorld(ROOT / ".cache" / "bench-switchover" / stamp / "world")
    writer = Writer(conninfo, args.interval)
    writer.start()
    time.sleep(1)
    results = []
    env = world.env(callback=False)
    for round_no in range(1, args.rounds + 1):
        change = f"BENCH-{stamp}-SW{round_no}"
        vars_file = world.change(change, "non_routine", "online_acceptance", targets=LAB_HOSTS)
        world.sign(change)
        started = time.monotonic()
        run = subprocess.run(
            [str(Path(sys.executable).with_name("ansible-playbook"))]
            + [arg for inv in inventories for arg in ("-i", inv)]
            + [str(ROOT / "playbooks/switchover.yml"), "-e", f"@{vars_file}"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )
        playbook_s = time.monotonic() - started
        time.sleep(1)
        seconds, refused, accepted = outage(writer.samples, started)
        results.append({
            "round": round_no,
            "playbook_rc": run.returncode,
            "playbook_seconds": round(playbook_s, 1),
            "writes_refused_seconds": None if seconds is None else round(seconds, 2),
            "old_primary": last_ok_before(writer.samples, refused[0]) if refused else None,
            "new_primary": accepted[2] if accepted else None,
        })
        if run.returncode != 0:
            sys.stderr.write(run.stdout[-4000:] + run.stderr[-2000:])
            break
    writer.stop.set()
    writer.join()

    ok = all(r["playbook_rc"] == 0 and r["writes_refused_seconds"] is not None
             and r["writes_refused_seconds"] <= args.target for r in results)
    if args.json:
        print(json.dumps({"target_seconds": args.target, "rounds": results, "ok": ok}, indent=2))
    else:
        for r in results:
            print(f"switch-over {r['round']}: writes refused for {r['writes_refused_seconds']} s "
                  f"({r['old_primary']} -> {r['new_primary']}); playbook {r['playbook_seconds']} s, rc {r['playbook_rc']}")
        print(f"target <= {args.target:g} s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
