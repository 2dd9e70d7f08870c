"""The rehearsal (issue 15 Deliver 3; issue 11 Deliver 4): go_live.yml, upgrade.yml and rollback.yml
with --check --diff run to the end on the podman lab, change nothing on any host, consume no
approval and are recorded in the change register as check-mode runs; the same approvals then pass
the real run.

State compared before and after each rehearsal: the release directories, the `current` symlink and
the HISTORY of app1/app2, the sampleapp unit and whether it runs; nginx's whole configuration and
the drained-node markers on lb1; the delivery work and pre-change dump directories and the
application's tables and DML ledger on db1. Sequence (one module fixture, about 6 minutes):
  reset -> rehearse go-live 1.0.0 -> go-live -> rehearse upgrade 1.1.0 -> upgrade -> rehearse rollback -> rollback
"""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_world import LabWorld  # noqa: E402  pylint: disable=wrong-import-position
from test_delivery_lab import (  # noqa: E402  pylint: disable=wrong-import-position
    BIN, HOSTS, _bring_up, _node_version, _podman, _prepare_db, _run, build_all, delivery_change, register_form)

FILES = "find {paths} -printf '%p %y %l %m %s %T@\\n' 2>/dev/null | sort; find {paths} -type f -exec sha256sum {{}} + 2>/dev/null | sort"
SNAPSHOT = {
    "app1": FILES.format(paths="/opt/sampleapp /etc/systemd/system/sampleapp.service") + "; systemctl is-active sampleapp || true",
    "app2": FILES.format(paths="/opt/sampleapp /etc/systemd/system/sampleapp.service") + "; systemctl is-active sampleapp || true",
    "lb1": FILES.format(paths="/etc/nginx") + "; systemctl is-active nginx || true",
    "db1": FILES.format(paths="/var/lib/prodgate /var/backups/prodgate-prechange"),
}
TABLES = ("SELECT 'settings', row_to_json(s)::text FROM sampleapp_settings s UNION ALL "
          "SELECT 'ledger', row_to_json(l)::text FROM prodgate_dml_ledger l ORDER BY 1, 2")


def snapshot():
    state = {host: _podman(host, "sh", "-c", script).stdout for host, script in SNAPSHOT.items()}
    proc = _podman("db1", "runuser", "-u", "postgres", "--", "psql", "-XAt", "-d", "appdb", "-c", TABLES)
    state["db1:tables"] = proc.stdout + proc.stderr.replace("\n", " ")
    return state


def differences(before, after):
    out = []
    for key in before:
        old, new = set(before[key].splitlines()), set(after[key].splitlines())
        out += [f"{key}: - {line}" for line in sorted(old - new)] + [f"{key}: + {line}" for line in sorted(new - old)]
    return out


@pytest.fixture(scope="module", name="lab")
def fixture_lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("rehearsal")
    world = LabWorld(work / "world")
    env, lab_env = world.env(), world.env(callback=False)
    stamp = time.strftime("%Y%m%d%H%M%S")
    _bring_up(lab_env)
    _prepare_db(world, env, stamp)
    built = build_all(work, env)
    rc, out = _run([str(BIN / "ansible-playbook"), "playbooks/demo.yml", "--tags", "demo_reset", "--limit", HOSTS], lab_env)
    assert rc == 0, out[-3000:]
    results = {"world": world, "env": env}

    def rehearse_then_run(name, book, vars_file, real_check):
        before = snapshot()
        rc, out = _run([str(BIN / "ansible-playbook"), book, "--limit", HOSTS, "-e", f"@{vars_file}", "--check", "--diff"], env)
        (work / f"{name}-check.log").write_text(out)
        results[name] = {"check": (rc, out), "differences": differences(before, snapshot())}
        rc, out = _run([str(BIN / "ansible-playbook"), book, "--limit", HOSTS, "-e", f"@{vars_file}", "--diff"], env)
        (work / f"{name}.log").write_text(out)
        results[name]["real"] = (rc, out)
        results[name]["after"] = real_check()

    def versions():
        return {h: _node_version(h) for h in ("app1", "app2")}
    rehearse_then_run("go_live", "playbooks/go_live.yml",
                      delivery_change(world, f"T-{stamp}-GL", "initial_go_live", *built["1.0.0"], version="1.0.0"), versions)
    rehearse_then_run("upgrade", "playbooks/upgrade.yml",
                      delivery_change(world, f"T-{stamp}-UP", "version_update", *built["1.1.0"], version="1.1.0"), versions)
    rehearse_then_run("rollback", "playbooks/rollback.yml",
                      delivery_change(world, f"T-{stamp}-RB", "non_routine",
                                      extra_vars={"prodgate_rollback_of": f"T-{stamp}-UP"}), versions)
    results["stamp"] = stamp
    return results


@pytest.mark.parametrize("name", ["go_live", "upgrade", "rollback"])
def test_rehearsal_runs_to_the_end_and_changes_nothing(lab, name):
    rc, out = lab[name]["check"]
    assert rc == 0, f"{name} --check --diff did not run to the end:\n{out[-4000:]}"
    assert lab[name]["differences"] == [], f"{name} --check changed the lab:\n" + "\n".join(lab[name]["differences"][:40])


@pytest.mark.parametrize("name, versions", [("go_live", {"app1": "1.0.0", "app2": "1.0.0"}),
                                            ("upgrade", {"app1": "1.1.0", "app2": "1.1.0"}),
                                            ("rollback", {"app1": "1.0.0", "app2": "1.0.0"})])
def test_the_same_approvals_then_pass_the_real_run(lab, name, versions):
    rc, out = lab[name]["real"]
    assert rc == 0, f"the real {name} after its rehearsal failed (were the approvals consumed?):\n{out[-4000:]}"
    assert lab[name]["after"] == versions


def test_register_records_each_rehearsal_as_check_mode(lab):
    """The rehearsal is on record as a check-mode run whose gate consumed nothing; the real run consumed."""
    stamp = lab["stamp"]
    for change in (f"T-{stamp}-GL", f"T-{stamp}-UP", f"T-{stamp}-RB"):
        form = register_form(lab["env"], lab["world"], change)
        assert [bool(r.get("check_mode")) for r in form["runs"]] == [True, False], (change, form["runs"])
        assert [d["consumed"] for d in form["approvals"]] == [False, True], (change, form["approvals"])
