"""Bench of prodgate.deploy.approval_gate (issue 3 acceptance): decision time for a change with
10 approvals targeting 1,000 hosts, median of repeated runs, beside a no-op task in the same run.

Two figures:
  * in-process: the core decision (the controller's trust settings, the pinned policy with its
    anti-rollback check in the register, the evidence, quorum/order/SoD, consumption in the
    change register with the decision appended) called directly, median of --repeat runs;
  * playbook: the decision time measured inside each gate task (result decision_ms), and
    one ansible-playbook run over a 1,000-host inventory with --repeat gate tasks
    (each for its own change, so each really consumes) and --repeat no-op tasks
    (ansible.builtin.debug, run_once), wall time per task from a timing callback.
Target: the gate's median decision time is at most 100 ms. Keys are generated at run time.

    .venv/bin/python bench/gate_bench.py [--hosts 1000] [--repeat 15]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from approval_world import ARTIFACT, World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.approvals import load_evidence  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.gate import run_gate  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import open_trusted  # noqa: E402

TARGET_MS = 100.0


def build(tmp, hosts, repeat):
    names = [f"host{i:04d}" for i in range(hosts)]
    # crm (customer_service / product) version update with a 1-of-n review panel:
    # plan_submission, coo_approval, internal_review, 4 x go_live, 2 x implementer_ack, supervisor_ack = 10 approvals
    world = World(tmp, overrides={"roles": {"review_panel": {"threshold": 1}}}, hosts=names)
    changes = []
    for i in range(2 * repeat):  # one change per gate run (the first half in process, the second in the playbook)
        binding = world.binding(system="crm", change_id=f"CHG-BENCH-{i:03d}", implementers=["ivan", "jane"], supervisor="sam")
        envelopes = world.evidence(binding=binding, replace={("internal_review", "review_panel"): ["rev1"]})
        changes.append((binding, world.write_evidence(envelopes, name=f"evidence-{i:03d}")))
    config = world.controller(register_db=os.path.join(tmp, "register.db"))
    with open_trusted(environment="production", environ={"PRODGATE_CONTROLLER_CONFIG": config}):
        pass  # an existing register, as in production
    return world, config, changes, len(envelopes), names


def in_process(config, changes):
    times = []
    environ = {"PRODGATE_CONTROLLER_CONFIG": config}
    for binding, evidence in changes:
        start = time.perf_counter()
        with open_trusted(environment="production", environ=environ) as trusted:
            run_gate(trusted.policy, load_evidence(evidence), binding, trusted.ledger)
        times.append((time.perf_counter() - start) * 1000)
    return times


def playbook(config, changes, names, tmp):
    inventory = Path(tmp) / "hosts.ini"
    inventory.write_text("[change_hosts]\n" + "\n".join(names) + "\n[change_hosts:vars]\nansible_connection=local\n"
                         f"ansible_python_interpreter={REPO / '.venv' / 'bin' / 'python'}\n")
    tasks = []
    for i, (binding, evidence) in enumerate(changes):
        tasks.append({"name": f"gate {i}", "prodgate.deploy.approval_gate": {"change_id": binding["change_id"], "evidence": evidence},
                      "run_once": True})
        tasks.append({"name": f"noop {i}", "ansible.builtin.debug": {"msg": "noop"}, "run_once": True})
    play = [{"name": "gate bench", "hosts": "change_hosts", "gather_facts": False, "tasks": tasks}]
    book = Path(tmp) / "bench.yml"
    book.write_text(json.dumps(play))
    binding = changes[0][0]
    variables = {"prodgate_change_id": "CHG-BENCH", "prodgate_change_type": binding["change_type"], "prodgate_system": binding["system"],
                 "prodgate_environment": binding["environment"], "prodgate_version": binding["version"],
                 "prodgate_artifacts": [ARTIFACT], "prodgate_implementers": ["ivan", "jane"], "prodgate_supervisor": "sam"}
    vars_file = Path(tmp) / "vars.json"
    vars_file.write_text(json.dumps(variables))
    out = Path(tmp) / "times.jsonl"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "bench" / "gate_callback"), ANSIBLE_CALLBACKS_ENABLED="gate_timer,prodgate.deploy.change_register",
               GATE_TIMER_OUT=str(out), ANSIBLE_NOCOLOR="1", PRODGATE_CONTROLLER_CONFIG=config)
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), "-e", f"@{vars_file}", str(book)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench playbook failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    gate = [r["seconds"] * 1000 for r in rows if r["task"].startswith("gate ")]
    noop = [r["seconds"] * 1000 for r in rows if r["task"].startswith("noop ")]
    decision = [r["decision_ms"] for r in rows if r["task"].startswith("gate ")]
    return gate, noop, decision


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dummy, config, changes, approvals, names = build(tmp, args.hosts, args.repeat)
        core = in_process(config, changes[:args.repeat])
        gate, noop, decision = playbook(config, changes[args.repeat:], names, tmp)
    med = statistics.median
    print(f"approval_gate bench: {approvals} approvals, {args.hosts} target hosts, {args.repeat} runs each")
    print(f"  core decision (in-process)      median {med(core):7.1f} ms   min {min(core):6.1f}   max {max(core):6.1f}")
    print(f"  gate decision (in the task)     median {med(decision):7.1f} ms   min {min(decision):6.1f}   max {max(decision):6.1f}")
    print(f"  gate task (ansible-playbook)    median {med(gate):7.1f} ms   min {min(gate):6.1f}   max {max(gate):6.1f}")
    print(f"  no-op task, same run            median {med(noop):7.1f} ms   min {min(noop):6.1f}   max {max(noop):6.1f}")
    print(f"  gate overhead over no-op        median {med(gate) - med(noop):7.1f} ms")
    print(f"  load average while running      {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    ok = med(decision) <= TARGET_MS
    print(f"target: gate decision median <= {TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'} "
          f"(the task's wall time adds Ansible's own per-task cost, shown by the no-op)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
