"""Benchmark of the change register's cost (issue 5, deliverable 7).

Runs the same controller-bound playbook (50 local hosts x 20 tasks reporting changed, forks 10)
plain, with prodgate.deploy.change_register on SQLite, and with ARA's callback (offline client,
SQLite), alternating the three in each round, and prints the medians and ratios. Then it builds a
register of 1,000,000 synthetic entries and times `verify` over it.

    .venv/bin/python bench/register_overhead.py [--rounds 3] [--entries 1000000] [--skip-ara] [--json FILE]

Targets: prodgate <= 1.05 x plain; verify >= 200,000 entries/s.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, ".venv", "bin")
sys.path.insert(0, os.path.join(REPO, "plugins"))

HOSTS, TASKS, FORKS = 50, 20, 10


def write_fixture(work):
    with open(os.path.join(work, "hosts.yml"), "w", encoding="utf-8") as fh:
        fh.write("all:\n  hosts:\n")
        for i in range(HOSTS):
            fh.write(f"    bench{i:02d}: {{ansible_connection: local, ansible_python_interpreter: {BIN}/python}}\n")
    with open(os.path.join(work, "bench.yml"), "w", encoding="utf-8") as fh:
        fh.write("- name: Register overhead benchmark\n  hosts: all\n  gather_facts: false\n  tasks:\n")
        for t in range(TASKS):
            fh.write(f"    - name: Change {t}\n      ansible.builtin.debug:\n        msg: change {t} on {{{{ inventory_hostname }}}}\n"
                     "      changed_when: true\n")


def ara_callback_dir():
    out = subprocess.run([os.path.join(BIN, "python"), "-m", "ara.setup.callback_plugins"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def run(mode, work, n):
    env = dict(os.environ)
    env.update({"ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
                "ANSIBLE_FORKS": str(FORKS), "ANSIBLE_NOCOLOR": "1", "PATH": BIN + os.pathsep + env.get("PATH", "")})
    for k in ("ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_PLUGINS"):
        env.pop(k, None)
    state = os.path.join(work, f"{mode}-{n}")
    os.makedirs(state)
    if mode == "prodgate":
        env.update({"ANSIBLE_CALLBACKS_ENABLED": "prodgate.deploy.change_register",
                    "PRODGATE_REGISTER_DB": os.path.join(state, "register.db"),
                    "PRODGATE_REGISTER_SIGNING_KEY": os.path.join(work, "signing.key"),
                    "PRODGATE_REGISTER_ANCHOR": os.path.join(state, "anchor.json"),
                    "PRODGATE_REGISTER_JOURNAL_DIR": os.path.join(state, "journal")})
    elif mode == "ara":
        env.update({"ANSIBLE_CALLBACK_PLUGINS": ara_callback_dir(), "ARA_API_CLIENT": "offline",
                    "ARA_BASE_DIR": state, "ARA_DATABASE_NAME": os.path.join(state, "ansible.sqlite")})
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(work, "hosts.yml"), os.path.join(work, "bench.yml"),
           "-e", "prodgate_change_id=BENCH-1", "-e", "prodgate_change_type=routine"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{mode} run failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    if mode == "prodgate":
        from prodgate.register_store import open_store  # pylint: disable=import-outside-toplevel
        with open_store(os.path.join(state, "register.db")) as store:
            count = store.head()[0]
        expected = HOSTS * TASKS * 2 + 3
        if count != expected:
            sys.exit(f"prodgate run recorded {count} entries, expected {expected}")
    return elapsed


def verify_throughput(entries, work):
    from prodgate.register_chain import chain, generate_key, make_checkpoint  # pylint: disable=import-outside-toplevel
    from prodgate.register_record import canonical_json  # pylint: disable=import-outside-toplevel
    from prodgate.register_store import open_store  # pylint: disable=import-outside-toplevel
    from prodgate.register_writer import verify_register  # pylint: disable=import-outside-toplevel
    path = os.path.join(work, "verify.db")
    store = open_store(path, durability="NORMAL")
    store.migrate()
    key = generate_key(os.path.join(work, "verify.key"))
    seq, prev = 0, "0" * 64
    batch = 50000
    while seq < entries:
        bodies = []
        for i in range(seq, min(entries, seq + batch)):
            bodies.append(canonical_json({
                "kind": "outcome", "run": f"run{i // 2000:06d}", "ts": "2026-01-01T00:00:00.000000Z", "host": f"bench{i % 50:02d}",
                "task": f"Change {i % 20}", "task_uuid": f"uuid-{i % 20}", "module": "ansible.builtin.debug", "status": "ok",
                "changed": True, "check_mode": False, "duration_ms": 12, "args": {"msg": f"change {i % 20}"}}))
        rows = []
        for p, h, b in chain(prev, bodies):
            seq += 1
            rows.append((seq, p, h, b))
            prev = h
        if seq == entries:
            cp = canonical_json(make_checkpoint(key, store.register_id(), seq, prev))
            (p, h, b), = chain(prev, [cp])
            seq += 1
            rows.append((seq, p, h, b))
        with store._write_txn():  # pylint: disable=protected-access
            store._insert_many(rows)  # pylint: disable=protected-access
    started = time.perf_counter()
    report = verify_register(store, trusted_keys=None)
    elapsed = time.perf_counter() - started
    store.close()
    if not report["ok"]:
        sys.exit(f"verify of the synthetic register failed: {report['first_problem']}")
    return report["entries"], elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--skip-ara", action="store_true")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="prodgate-bench-")
    try:
        write_fixture(work)
        modes = ["plain", "prodgate"] + ([] if args.skip_ara else ["ara"])
        times = {m: [] for m in modes}
        for n in range(args.rounds):
            order = modes[n % len(modes):] + modes[:n % len(modes)]  # rotate so no mode always runs first
            for mode in order:
                times[mode].append(run(mode, work, n))
                print(f"round {n + 1}: {mode:8} {times[mode][-1]:7.2f} s", flush=True)
        med = {m: statistics.median(v) for m, v in times.items()}
        print(f"\n{HOSTS} hosts x {TASKS} changed tasks, forks {FORKS}, {args.rounds} rounds alternating")
        for m in modes:
            print(f"median {m:8} {med[m]:7.2f} s   ratio to plain {med[m] / med['plain']:.3f}")
        verdict = "meets" if med["prodgate"] / med["plain"] <= 1.05 else "MISSES"
        print(f"prodgate / plain = {med['prodgate'] / med['plain']:.3f} ({verdict} the 1.05 target)")
        if "ara" in med:
            print(f"ara / prodgate = {med['ara'] / med['prodgate']:.2f}")
        n_entries, secs = verify_throughput(args.entries, work)
        rate = n_entries / secs
        print(f"verify: {n_entries} entries in {secs:.2f} s = {rate:,.0f} entries/s "
              f"({'meets' if rate >= 200_000 else 'MISSES'} the 200,000/s target)")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"times": times, "medians": med, "verify_entries": n_entries, "verify_seconds": secs,
                           "verify_rate": rate}, fh, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
