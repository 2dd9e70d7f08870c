"""Pure record building and redaction of the change register (no Ansible, no database)."""
import json

from hypothesis import given, settings, strategies as st

from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.record import (
    MASK, build_intent, build_outcome, normalise_diff, plain, redact, redact_text, run_metadata, validate_change
)
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import canonical_json

TASK = {"name": "Deploy", "uuid": "u-1", "module": "ansible.builtin.copy", "role": "web", "check_mode": False, "no_log": False}


def test_canonical_json_is_sorted_compact_and_utf8():
    assert canonical_json({"b": 1, "a": ["é", None, True]}) == '{"a":["é",null,true],"b":1}'


def test_plain_keeps_floats_out_of_hashed_bodies():
    assert plain({"x": 1.0, "y": 0.5, "z": (1, 2), "s": {3}}) == {"x": 1, "y": "0.5", "z": [1, 2], "s": [3]}


def test_secret_keys_are_masked_at_any_depth():
    data = {"user": "app", "password": "p", "nested": {"api_key": "k", "list": [{"client_secret": "s", "ok": 1}]},
            "private_key_path": "/etc/x", "enabled": True, "token": ""}
    out = redact(data)
    assert out["user"] == "app" and out["password"] == MASK and out["nested"]["api_key"] == MASK
    assert out["nested"]["list"][0] == {"client_secret": MASK, "ok": 1}
    assert out["private_key_path"] == MASK and out["token"] == ""


def test_secret_looking_text_is_masked():
    text = ("user=app\npassword=hunter2\nDB_PASSWORD: 'x y'\napi_token = abc123\nurl=https://u:pw@db.example/x\n"
            "Authorization: Bearer abcdefghijkl\n-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
    out = redact_text(text)
    for secret in ("hunter2", "'x y'", "abc123", ":pw@", "abcdefghijkl", "MIIB"):
        assert secret not in out
    assert "user=app" in out and "password=" + MASK in out and "https://u:" + MASK + "@db.example/x" in out


def test_known_secret_values_are_scrubbed_everywhere():
    assert redact_text("value is S3cr3tV4lue!", known_secrets=["S3cr3tV4lue!"]) == "value is " + MASK


def test_no_log_result_becomes_a_censored_change_only():
    res = {"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result",
           "changed": True}
    entry = build_outcome("r", "h1", TASK, "ok", res, "t", duration_ms=5)
    assert entry["censored"] is True and entry["changed"] is True
    assert not {"args", "diff", "items", "msg"} & set(entry)
    flagged = build_outcome("r", "h1", dict(TASK, no_log=True), "ok",
                            {"changed": True, "invocation": {"module_args": {"content": "SECRET"}}}, "t")
    assert "SECRET" not in canonical_json(flagged) and flagged["censored"]


def test_outcome_records_module_args_and_redacted_diff_not_task_args():
    res = {"changed": True, "invocation": {"module_args": {"dest": "/etc/app.conf", "content": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER",
                                                           "owner": None}},
           "diff": {"before": "password=old\n", "after": "password=new\n", "after_header": "/etc/app.conf"}}
    entry = build_outcome("r", "h1", TASK, "ok", res, "t", duration_ms=12)
    assert entry["args"] == {"dest": "/etc/app.conf", "content": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
    assert entry["diff"] == [{"after_header": "/etc/app.conf", "before": "password=" + MASK + "\n", "after": "password=" + MASK + "\n"}]
    assert entry["duration_ms"] == 12 and entry["status"] == "ok" and entry["changed"]


def test_hash_diff_mode_keeps_only_digests():
    out = normalise_diff({"before": "a\n", "after": "b\n"}, mode="hash")
    assert set(out[0]) == {"before_sha256", "after_sha256"} and "b\n" not in json.dumps(out)


def test_loop_items_are_recorded_each_censored_on_their_own():
    res = {"changed": True, "results": [
        {"changed": True, "item": "one", "_ansible_item_label": "one", "invocation": {"module_args": {"cmd": "echo one"}}},
        {"censored": "hidden", "changed": True, "_ansible_no_log": True}]}
    entry = build_outcome("r", "h", TASK, "ok", res, "t")
    assert entry["items"][0]["item"] == "one" and entry["items"][1] == {"censored": True, "changed": True}


def test_approval_gate_and_window_results_become_evidence():
    res = {"changed": False, "change_id": "CHG-1", "required_stages": ["coo_approval"],
           "approvals": [{"stage": "coo_approval", "role": "coo", "person": "dana", "issued_at": "2026-01-01", "key_id": "k1"}]}
    entry = build_outcome("r", "h", dict(TASK, module="prodgate.deploy.approval_gate"), "ok", res, "t")
    assert entry["evidence"]["type"] == "approval_gate" and entry["evidence"]["approvals"][0]["person"] == "dana"
    win = build_outcome("r", "h", dict(TASK, module="prodgate.deploy.change_window"), "ok",
                        {"window": "open", "override_used": False}, "t")
    assert win["evidence"] == {"type": "change_window", "window": "open", "override_used": False}


def test_intent_has_no_arguments():
    intent = build_intent("r", "h1", TASK, "t")
    assert intent["kind"] == "intent" and "args" not in intent and intent["task_uuid"] == "u-1"


def test_run_metadata_from_awx_tower_and_environment():
    meta = run_metadata({"tower_job_id": 7, "tower_user_name": "bob", "tower_job_launch_type": "scheduled",
                         "prodgate_change_id": "C1", "prodgate_implementers": "a, b"},
                        {"PROJECT_REVISION": "abc", "AWX_HOST": "https://awx"})
    assert meta["awx"]["job_id"] == 7 and meta["awx"]["user_name"] == "bob" and meta["awx"]["launch_type"] == "scheduled"
    assert meta["project_revision"] == "abc" and meta["change"]["implementers"] == ["a", "b"]
    assert run_metadata({}, {"JOB_ID": "9"})["awx"] == {"job_id": "9"}
    assert run_metadata({}, {})["awx"] is None


def test_change_type_must_be_one_of_article_25():
    assert validate_change({"id": "C", "type": "routine"}) == []
    # Reproduction (issue 11, one change model): the register's list lacked initial_go_live, so every
    # go-live was recorded with a false change problem.
    assert validate_change({"id": "C", "type": "initial_go_live"}) == []
    assert "Art. 25" in validate_change({"id": "C", "type": "yolo"})[0]
    assert "prodgate_change_id" in validate_change({"type": "routine"})[0]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                           max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_redaction_is_idempotent_and_canonical_json_round_trips(value):
    once = redact(plain(value))
    assert redact(once) == once
    text = canonical_json(once)
    assert canonical_json(json.loads(text)) == text
