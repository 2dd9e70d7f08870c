"""Rolling-upgrade bench on the podman lab (issue 8 acceptance).

    .venv/bin/python bench/upgrade_bench.py [--keep-state] [--json FILE]

1. resets the sample application and goes live with 1.0.0 on app1/app2 behind nginx on lb1;
2. upgrades to 1.1.0 with playbooks/upgrade.yml (serial 1: drain, deploy, health, undrain) while
   scripts/loadgen.py sends requests without pause to the load balancer published on
   127.0.0.1:18080 (bounded: at most 200000 requests and 600 s); prints total and failed (target 0);
3. attempts the broken 1.2.0 while the nodes are polled directly (lab addresses, /version every
   50 ms) and prints the time from the failed health check (its outcome in the change register)
   to every node serving 1.1.0 again (target <= 15 s).
The playbooks run gated exactly as in production (issue 11: there is no switch that turns the gates
off): tests/integration/lab_world.py provides test keys, a signed lab policy, the controller
trust settings and the signed approvals of each change; the register is on. Network: 127.0.0.1 and
the lab containers only. Results go to bench/results/.
"""
import argparse
import datetime
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
NODES = {"app1": "10.89.77.11", "app2": "10.89.77.12"}
HOSTS = "lb1,app1,app2,db1"


def world_for(work):
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from lab_world import LabWorld  # pylint: disable=import-outside-toplevel,import-error
    return LabWorld(work / "world")


def run(cmd, env, log, check=True):
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}; see {log}")
    return proc.returncode


def play(world, book, change, change_type, version, bundle, sha, log, check=True):  # pylint: disable=too-many-arguments
    """A gated run of ``book`` for a new change of sampleapp, its approvals signed first."""
    vars_file = world.change(change, change_type, "sampleapp", version=version, artifacts=[sha], targets=HOSTS.split(","),
                             extra_vars={"delivery_bundle": str(bundle), "delivery_bundle_sha256": sha})
    world.sign(change)
    return run([BIN / "ansible-playbook", book, "--limit", HOSTS, "-e", f"@{vars_file}"], world.env(), log, check)


def with_load(work, name, action):
    out = work / f"load-{name}.json"
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "loadgen.py"), "--max-requests", "200000",
                             "--max-seconds", "600", "--out", str(out)], stdout=subprocess.DEVNULL)
    try:
        result = action()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return result, json.loads(out.read_text())


class Poller(threading.Thread):
    """Polls every node's /version directly; keeps (time, {node: version})."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.stop = threading.Event()

    def version(self, address):
        try:
            with urllib.request.urlopen(f"http://{address}:8080/version", timeout=1) as resp:  # nosec: lab address
                return json.loads(resp.read()).get("version")
        except (OSError, ValueError):
            return None

    def run(self):
        while not self.stop.is_set():
            now = time.time()
            self.samples.append((now, {node: self.version(addr) for node, addr in NODES.items()}))
            self.stop.wait(0.05)


def failed_health_time(change, env):
    out = subprocess.run([BIN / "prodgate", "register", "changes", "--change", change, "--status", "failed", "--json",
                          "--limit", "0"], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)
    rows = rows.get("changes", rows) if isinstance(rows, dict) else rows
    times = [r for r in rows if "health" in str(r.get("task", "")).lower()]
    if not times:
        sys.exit(f"no failed health check recorded for {change}: {rows}")
    stamp = times[0].get("time") or times[0].get("ts") or times[0].get("recorded_at")
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d%H%M%S")
    work = ROOT / ".cache" / "bench-upgrade" / stamp
    work.mkdir(parents=True)
    world = world_for(work)
    env = world.env()
    lab_env = world.env(callback=False)   # the lab's own plays are not production changes
    run([BIN / "ansible-playbook", "playbooks/lab.yml", "-e", "lab_state=started", "--limit", HOSTS], lab_env, work / "lab.log")
    built = {}
    for line in subprocess.run([sys.executable, str(ROOT / "tests/fixtures/sampleapp/build_bundles.py"), str(work / "bundles")],
                               capture_output=True, text=True, check=True, env=env).stdout.splitlines():
        item = json.loads(line)
        built[item["version"]] = (item["path"], item["sha256"])
    run([BIN / "ansible-playbook", "playbooks/demo.yml", "--tags", "demo_reset", "--limit", HOSTS], lab_env, work / "reset.log")
    play(world, "playbooks/go_live.yml", f"BENCH-{stamp}-GL", "initial_go_live", "1.0.0", *built["1.0.0"], work / "golive.log")
    print("go-live 1.0.0 done; rolling upgrade 1.0.0 -> 1.1.0 under load ...", flush=True)
    start = time.monotonic()

    def upgrade_110():
        return play(world, "playbooks/upgrade.yml", f"BENCH-{stamp}-UP110", "version_update", "1.1.0", *built["1.1.0"],
                    work / "up110.log")

    dummy, load = with_load(work, "up110", upgrade_110)
    upgrade_s = time.monotonic() - start
    print("attempting the broken 1.2.0 ...", flush=True)
    poller = Poller()
    poller.start()
    change = f"BENCH-{stamp}-UP120"
    rc, load120 = with_load(work, "up120", lambda: play(world, "playbooks/upgrade.yml", change, "version_update", "1.2.0",
                                                        *built["1.2.0"], work / "up120.log", check=False))
    time.sleep(0.5)
    poller.stop.set()
    poller.join()
    if rc == 0:
        sys.exit("the 1.2.0 upgrade passed: it must fail its health check")
    failed_at = failed_health_time(change, env)
    recovered = next((t for t, v in poller.samples if t >= failed_at and set(v.values()) == {"1.1.0"}), None)
    result = {
        "upgrade_1_0_to_1_1": {"seconds": round(upgrade_s, 1), "requests": load["total"], "failed": load["failed"],
                               "keepalive_retries": load.get("keepalive_retries", 0), "versions": load["versions"], "failures": load["failures"]},
        "failed_1_2_0": {"requests": load120["total"], "failed": load120["failed"],
                         "health_failed_to_all_1_1_0_s": None if recovered is None else round(recovered - failed_at, 2),
                         "poll_samples": len(poller.samples)},
        "targets": {"failed_requests": 0, "recovery_s": 15}, "work": str(work),
    }
    print(f"1.0.0 -> 1.1.0 rolling upgrade: {upgrade_s:.1f} s, {load['total']} requests, {load['failed']} failed "
          f"(target 0), {load.get('keepalive_retries', 0)} keep-alive retries; versions served {load['versions']}")
    print(f"1.2.0 attempt: {load120['total']} requests, {load120['failed']} failed; failed health check -> every node "
          f"serving 1.1.0: {result['failed_1_2_0']['health_failed_to_all_1_1_0_s']} s (target <= 15 s)")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    text = json.dumps(result, indent=2, sort_keys=True)
    (results / f"upgrade_bench-{stamp}.json").write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(text + "\n")
    ok = load["failed"] == 0 and recovered is not None and recovered - failed_at <= 15
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
