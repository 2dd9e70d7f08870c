"""Issue 11, Deliver 3: the single-use ledger is the change register. Two gates racing with the same
evidence on one PostgreSQL register (as from two controllers or two AWX execution nodes): exactly
one passes, every time, and the register holds exactly one decision for the change."""
import json
import multiprocessing

import pytest

from conftest import _world_module

RACES = 50


def _gate(config, evidence_dir, binding, barrier, results):
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import approvals  # pylint: disable=import-outside-toplevel
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import gate
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError  # pylint: disable=import-outside-toplevel
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.trust import open_trusted  # pylint: disable=import-outside-toplevel
    try:
        with open_trusted(environment="production", environ={"PRODGATE_CONTROLLER_CONFIG": config}) as trusted:
            envelopes = approvals.load_evidence(evidence_dir)
            barrier.wait(timeout=60)
            gate.run_gate(trusted.policy, envelopes, binding, trusted.ledger)
        results.put("passed")
    except ProdgateError as exc:
        results.put("refused: " + str(exc)[:300])


@pytest.mark.postgres
def test_two_gates_with_the_same_evidence_exactly_one_passes_in_50_of_50(tmp_path, pg_url):
    world = _world_module().World(tmp_path / "world")
    config = world.controller(register_db=pg_url)
    ctx = multiprocessing.get_context("fork")
    outcomes = []
    for race in range(RACES):
        binding = world.binding(change_id=f"CHG-RACE-{race:02d}")
        evidence = world.write_evidence(world.evidence(binding=binding), name=f"evidence-{race:02d}")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_gate, args=(config, evidence, binding, barrier, results)) for dummy in range(2)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(120)
        got = sorted(results.get(timeout=10) for dummy in procs)
        outcomes.append(got)
        assert got[0] == "passed" and got[1].startswith("refused: ") and "replay refused" in got[1], (race, got)
    assert len(outcomes) == RACES
    from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store  # pylint: disable=import-outside-toplevel
    with open_store(pg_url) as store:
        decisions = [json.loads(b) for dummy, b in store.bodies(like='%"kind":"gate_decision"%')]
    assert sorted(d["change_id"] for d in decisions) == [f"CHG-RACE-{r:02d}" for r in range(RACES)]
