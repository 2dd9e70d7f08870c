"""Benchmark of the change register's cost (issue 5, deliverable 7; issue 16, deliverable 4).

Runs the same controller-bound playbook (local hosts x tasks reporting changed) plain, with
prodgate.deploy.change_register on SQLite, and with ARA's callback (offline client, SQLite),
alternating the three in each round, and prints the medians and ratios. Then it builds a
register of synthetic entries and times `verify` over it (bench/register_scale.py measures every
query at 100,000 and 1,000,000 entries).

    .venv/bin/python bench/register_overhead.py [--rounds 3] [--entries 1000000] [--skip-ara] [--json FILE]
    # issue 16: 1,000 hosts, forks 50, through the approval gate and the change window
    .venv/bin/python bench/register_overhead.py --hosts 1000 --forks 50 --tasks 3 --gate --entries 0

Every mode runs under the same controller settings (a controller.yml with a signed policy, its
pinned governance root and a fresh register per run, PRODGATE_CONTROLLER_CONFIG): with --gate the
play starts with prodgate.deploy.approval_gate and prodgate.deploy.change_window (run_once, as
the delivery playbooks run them), which consume the change's approvals in that register.

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
sys.path.insert(0, os.path.join(REPO, "tests"))

HOSTS, TASKS, FORKS = 50, 20, 10
GATE_TASKS = 2  # approval_gate and change_window, run_once


def write_fixture(work, gate=False):
    """The inventory, the playbook, and the controller's world: keys, signed policy, evidence, run vars."""
    from approval_world import ARTIFACT, World  # pylint: disable=import-outside-toplevel
    names = [f"bench{i:04d}" for i in range(HOSTS)]
    with open(os.path.join(work, "hosts.yml"), "w", encoding="utf-8") as fh:
        fh.write("all:\n  hosts:\n")
        for name in names:
            fh.write(f"    {name}: {{ansible_connection: local, ansible_python_interpreter: {BIN}/python}}\n")
    with open(os.path.join(work, "bench.yml"), "w", encoding="utf-8") as fh:
        fh.write("- name: Register overhead benchmark\n  hosts: all\n  gather_facts: false\n  tasks:\n")
        if gate:
            fh.write("    - name: Refuse the change unless every signed approval is present\n"
                     "      prodgate.deploy.approval_gate:\n      run_once: true\n"
                     "    - name: Refuse the change inside a freeze window or without its lead time\n"
                     "      prodgate.deploy.change_window:\n      run_once: true\n")
        for t in range(TASKS):
            fh.write(f"    - name: Change {t}\n      ansible.builtin.debug:\n        msg: change {t} on {{{{ inventory_hostname }}}}\n"
                     "      changed_when: true\n")
    # the plan is submitted now for a start in two hours: no lead time, no freeze window in this policy
    world = World(os.path.join(work, "world"), overrides={"lead_time_working_days": 0}, hosts=names)
    binding = world.binding(system="ta-core", change_id="BENCH-1", implementers=["ivan", "jane"], supervisor="sam")
    evidence = world.write_evidence(world.evidence(binding=binding), name="evidence")
    variables = {"prodgate_evidence": evidence, "prodgate_change_id": binding["change_id"],
                 "prodgate_change_type": binding["change_type"], "prodgate_system": binding["system"],
                 "prodgate_environment": binding["environment"], "prodgate_version": binding["version"],
                 "prodgate_artifacts": [ARTIFACT], "prodgate_implementers": ["ivan", "jane"], "prodgate_supervisor": "sam"}
    with open(os.path.join(work, "vars.json"), "w", encoding="utf-8") as fh:
        json.dump(variables, fh)
    return world


def ara_callback_dir():
    out = subprocess.run([os.path.join(BIN, "python"), "-m", "ara.setup.callback_plugins"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def run(mode, work, n, world, gate=False):
    env = dict(os.environ)
    env.update({"ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
                "ANSIBLE_FORKS": str(FORKS), "ANSIBLE_NOCOLOR": "1", "PATH": BIN + os.pathsep + env.get("PATH", "")})
    for k in ("ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_PLUGINS") + tuple(k for k in env if k.startswith("PRODGATE_")):
        env.pop(k, None)
    state = os.path.join(work, f"{mode}-{n}")
    os.makedirs(state)
    # a fresh register per run: the gate consumes the change's approvals in it (single use)
    env["PRODGATE_CONTROLLER_CONFIG"] = world.controller(register_db=os.path.join(state, "register.db"),
                                                         name=f"controller-{mode}-{n}.yml")
    if mode == "prodgate":
        env.update({"ANSIBLE_CALLBACKS_ENABLED": "prodgate.deploy.change_register"})
    elif mode == "ara":
        env.update({"ANSIBLE_CALLBACK_PLUGINS": ara_callback_dir(), "ARA_API_CLIENT": "offline",
                    "ARA_BASE_DIR": state, "ARA_DATABASE_NAME": os.path.join(state, "ansible.sqlite")})
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(work, "hosts.yml"), os.path.join(work, "bench.yml"),
           "-e", "@" + os.path.join(work, "vars.json")]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with
        # CPU time of the controller and every worker it waited for: what a callback adds, whatever else
        # runs on the machine (wall time also counts waiting for a CPU on a busy machine)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        cpu = usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            out.seek(0)
            sys.exit(f"{mode} run failed (rc {os.waitstatus_to_exitcode(status)}):\n{out.read().decode()[-4000:]}")
    if mode == "prodgate":
        from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store  # pylint: disable=import-outside-toplevel
        with open_store(os.path.join(state, "register.db")) as store:
            count = store.head()[0]
        expected = HOSTS * TASKS * 2 + (GATE_TASKS * 2 if gate else 0) + 3  # + run_open, run_close, checkpoint
        if count < expected:
            sys.exit(f"prodgate run recorded {count} entries, expected at least {expected}")
    return elapsed, cpu


def verify_throughput(entries, work):
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import (  # pylint: disable=import-outside-toplevel
        chain, generate_key, make_checkpoint
    )
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import canonical_json  # pylint: disable=import-outside-toplevel
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store  # pylint: disable=import-outside-toplevel
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.writer import verify_register  # pylint: disable=import-outside-toplevel
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
    global HOSTS, TASKS, FORKS  # pylint: disable=global-statement
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hosts", type=int, default=HOSTS)
    ap.add_argument("--tasks", type=int, default=TASKS, help="changed tasks per host")
    ap.add_argument("--forks", type=int, default=FORKS)
    ap.add_argument("--gate", action="store_true", help="start the play with the approval gate and the change window")
    ap.add_argument("--entries", type=int, default=1_000_000, help="verify a synthetic register of this size (0: skip)")
    ap.add_argument("--skip-ara", action="store_true")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    HOSTS, TASKS, FORKS = args.hosts, args.tasks, args.forks
    work = tempfile.mkdtemp(prefix="prodgate-bench-")
    try:
        world = write_fixture(work, gate=args.gate)
        modes = ["plain", "prodgate"] + ([] if args.skip_ara else ["ara"])
        times = {m: [] for m in modes}
        cpu = {m: [] for m in modes}
        for n in range(args.rounds):
            order = modes[n % len(modes):] + modes[:n % len(modes)]  # rotate so no mode always runs first
            for mode in order:
                wall, spent = run(mode, work, n, world, gate=args.gate)
                times[mode].append(wall)
                cpu[mode].append(spent)
                print(f"round {n + 1}: {mode:8} {wall:7.2f} s wall {spent:8.2f} s CPU", flush=True)
        med = {m: statistics.median(v) for m, v in times.items()}
        med_cpu = {m: statistics.median(v) for m, v in cpu.items()}
        print(f"\n{HOSTS} hosts x {TASKS} changed tasks{' after the gate and the window' if args.gate else ''}, "
              f"forks {FORKS}, {args.rounds} rounds alternating; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPU(s)")
        for m in modes:
            print(f"median {m:8} {med[m]:7.2f} s wall, ratio to plain {med[m] / med['plain']:.3f};   "
                  f"{med_cpu[m]:8.2f} s CPU, ratio to plain {med_cpu[m] / med_cpu['plain']:.3f}")
        verdict = "meets" if med["prodgate"] / med["plain"] <= 1.05 else "MISSES"
        print(f"prodgate / plain = {med['prodgate'] / med['plain']:.3f} wall ({verdict} the 1.05 target), "
              f"{med_cpu['prodgate'] / med_cpu['plain']:.3f} CPU")
        if "ara" in med:
            print(f"ara / prodgate = {med['ara'] / med['prodgate']:.2f} wall, {med_cpu['ara'] / med_cpu['prodgate']:.2f} CPU")
        figures = {"hosts": HOSTS, "tasks": TASKS, "forks": FORKS, "gate": args.gate, "times": times, "medians": med,
                   "cpu": cpu, "cpu_medians": med_cpu}
        if args.entries:
            n_entries, secs = verify_throughput(args.entries, work)
            rate = n_entries / secs
            print(f"verify: {n_entries} entries in {secs:.2f} s = {rate:,.0f} entries/s "
                  f"({'meets' if rate >= 200_000 else 'MISSES'} the 200,000/s target)")
            figures.update({"verify_entries": n_entries, "verify_seconds": secs, "verify_rate": rate})
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(figures, fh, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
