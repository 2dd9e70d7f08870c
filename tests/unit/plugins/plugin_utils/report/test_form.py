"""The Art. 27 form as a document (issue 13): each fact once, decisions in words, no empty diffs or
temporary paths; the outcome a change is shown with in the calendar."""
from ansible_collections.prodgate.deploy.plugins.plugin_utils.report import form as f


def _form(**over):
    base = {
        "change_id": "CHG-1", "request": {"type": "version_update", "system": "ta", "environment": "production",
                                          "version": "1.2.0", "requested_by": ["ivan", "ivan", "ivan"]},
        "approvals": [], "window": [], "implementers": ["ivan"], "supervisor": "sam", "verified_implementers": [],
        "verified_supervisor": None, "per_host": {}, "rolled_back": [], "rollback": [],
        "runs": [{"run": "r1", "started": "2026-03-02T02:00:00Z", "ended": "2026-03-02T02:10:00Z", "state": "ok",
                  "check_mode": False, "playbook": "upgrade.yml", "user": "ivan"}],
    }
    base.update(over)
    return base


GATE = {"type": "approval_gate", "performed_stage": "all", "consumed": True, "required_stages": ["go_live"],
        "approvals": [{"stage": "go_live", "role": "coo", "person": "carol", "issued_at": "2026-03-01T10:00:00+08:00",
                       "nonce": "n1", "key_id": "k1"}]}


def test_requesters_and_approvals_appear_once_however_often_the_gate_ran():
    trial = dict(GATE, consumed=False, performed_stage="trial_run", pending_stages=[{"stage": "go_live"}])
    doc = f.document(_form(approvals=[GATE, trial]))
    assert doc["requested_by"] == ["ivan"]
    assert [a["person"] for a in doc["approvals"]] == ["carol"]
    md = f.to_markdown(doc)
    assert md.count("| go live | coo | carol |") == 1 and "ivan, ivan" not in md


def test_decisions_are_sentences_not_json():
    window = {"allowed": True, "override_used": False, "window": {"at": "2026-03-02T10:00:00+08:00",
                                                                  "reason": "no window applies", "open": True}}
    doc = f.document(_form(approvals=[GATE], window=[window, window]))
    assert doc["window"] == ["The change window was open at 2026-03-02 10:00 UTC+08:00: no freeze window applies."]
    assert doc["gate"] == ["The approval gate passed: go live approved; the approvals were used up (single use)."]
    assert "{" not in f.to_markdown(doc)


def test_empty_diffs_and_temporary_paths_are_left_out():
    item = {"seq": 5, "task": "Write config", "module": "ansible.builtin.copy", "status": "ok", "changed": True,
            "args": {"dest": "/etc/app.conf"},
            "diff": [{"before": "", "after": "", "before_header": "/tmp/a", "after_header": "/tmp/b"},
                     {"before": "a=1\n", "after": "a=2\n", "before_header": "/etc/app.conf",
                      "after_header": "/root/.ansible/tmp/ansible-local-99/tmpx/app.conf"}]}
    diffs = f.clean_diffs(item)
    assert len(diffs) == 1 and diffs[0]["label"] == "/etc/app.conf"
    assert diffs[0]["lines"][-2:] == ["-a=1", "+a=2"]
    md = f.to_markdown(f.document(_form(approvals=[GATE], per_host={"app1": [item]})))
    assert "ansible-local" not in md and "/tmp/" not in md and "--- before" not in md


def test_outcomes():
    assert f.outcome(_form(approvals=[GATE])) == "completed"
    assert f.outcome(_form(approvals=[GATE], rolled_back=[{"host": "app1", "to": "1.1.0", "seq": 9}])) == "rolled_back"
    failed = _form(approvals=[GATE])
    failed["runs"][0]["state"] = "failed"
    assert f.outcome(failed) == "failed"
    assert f.outcome(_form(approvals=[dict(GATE, performed_stage="trial_run")])) == "trial_run"
    assert f.outcome(_form(approvals=[GATE], gate={"status": "UNGATED", "text": "UNGATED: 1 run"})) == "ungated"
    assert f.outcome(_form(gate={"status": "BREAK-GLASS open", "text": "BREAK-GLASS, open"})) == "break_glass"
    changed = {"app1": [{"changed": True, "status": "ok"}]}
    assert f.outcome(_form(per_host=changed)) == "ungated"  # changed hosts, no gate evidence at all


def test_a_failed_change_needs_a_signed_failure_analysis():
    failed = _form(approvals=[GATE], rolled_back=[{"host": "app1", "to": "1.1.0", "seq": 9}])
    doc = f.document(failed)
    assert doc["needs_analysis"] and "OPEN: no failure analysis" in f.to_markdown(doc)
    signed = {"cause": "bad migration", "action": "check migrations", "owner": "jane", "signer": "paula",
              "key_id": "abcdef0123456789ff", "signed_at": "2026-03-03T09:00:00+00:00"}
    md = f.to_markdown(f.document(failed, signed))
    assert "Cause: bad migration" in md and "Signed by paula" in md and "OPEN" not in md
