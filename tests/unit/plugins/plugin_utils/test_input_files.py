"""Bad input is refused, bounded and explained (issue 11, Deliver 9; reproduction "Bad inputs crash or
hang instead of being refused with a message").

One test per input class the issue names: timestamps without an offset, overflowing durations,
existing or missing output paths, NUL bytes, missing or binary key files, deeply nested JSON, YAML
alias expansion before the signature check, special files in the evidence folder, a ledger with an
old schema, oversized evidence and policy files. Each asserts that the message names the problem
and the fix. The property tests at the end feed random bytes, deep nesting and special files to the
evidence and policy loaders: only a ProdgateError may escape, within a deadline.

Every loader call runs in a forked child with a time and memory limit (:func:`bounded`), so that a
regression shows as a failed test naming the hang or the traceback, never as a hung suite or a
machine out of memory.
"""
import json
import multiprocessing
import os
import reprlib
import resource
import sqlite3
import stat
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from approval_world import World  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import approvals, dsse, policy as policy_mod  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import gate  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli import main  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import ProdgateError  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.ledger import Ledger  # noqa: E402
from ansible_collections.prodgate.deploy.plugins.plugin_utils.base import parse_duration, parse_instant
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance.lead_time import approval_time

MiB = 1024 * 1024
DEADLINE = 20  # seconds a loader may take on any input, in a child process (2 shared cores)


# ---- running a loader with a time and memory limit --------------------------------------------

def _child(conn, fn, args):
    try:
        rss = int(open("/proc/self/statm", encoding="ascii").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (rss + 1536 * MiB, rss + 1536 * MiB))
    except (OSError, ValueError):
        pass
    try:
        result = ("returned", fn(*args))
    except ProdgateError as exc:
        result = ("refused", type(exc).__name__, str(exc))
    except BaseException as exc:  # pylint: disable=broad-except  # the point: anything else is a defect
        result = ("crashed", type(exc).__name__, str(exc)[:500])
    try:
        conn.send(result)
    except Exception:  # pylint: disable=broad-except  # unpicklable return value
        conn.send(("returned", reprlib.repr(result[1])))
    conn.close()


def bounded(fn, *args, seconds=DEADLINE):
    """Run ``fn(*args)`` in a forked child; ("returned", value) | ("refused", class, message) |
    ("crashed", class, message) | ("hung", seconds)."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args))
    proc.start()
    child.close()
    if parent.poll(seconds):
        try:
            result = parent.recv()
        except EOFError:
            result = ("crashed", "child died", f"exit code {proc.exitcode}")
    else:
        result = ("hung", seconds)
    proc.kill()
    proc.join()
    return result


def refused(fn, *args, seconds=DEADLINE):
    """The message of the ProdgateError ``fn(*args)`` raises; fails the test on anything else."""
    result = bounded(fn, *args, seconds=seconds)
    assert result[0] == "refused", f"expected a clear refusal (ProdgateError), got {reprlib.repr(result)}"
    return result[2]


def returned(fn, *args, seconds=DEADLINE):
    result = bounded(fn, *args, seconds=seconds)
    assert result[0] == "returned", f"expected a result, got {reprlib.repr(result)}"
    return result[1]


def cli(*argv):
    """Run the `prodgate` command in a child: (exit code, stderr text)."""
    def run():
        import io  # pylint: disable=import-outside-toplevel
        err = io.StringIO()
        old = sys.stderr
        sys.stderr = err
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        finally:
            sys.stderr = old
        return code, err.getvalue()
    result = bounded(run)
    assert result[0] == "returned", f"`prodgate {' '.join(map(str, argv))}` did not end with an error message: {reprlib.repr(result)}"
    return result[1]


def cli_refuses(*argv, code=1):
    """stderr of a command that must end with ``prodgate: error: ...``: exit 1 for a refusal, 2 for
    an invalid option value (a usage error, reported by argparse after the usage line)."""
    got, err = cli(*argv)
    assert got == code and "prodgate: error: " in err, (got, err)
    assert "Traceback" not in err
    return err


@pytest.fixture(name="world")
def fixture_world(tmp_path):
    return World(tmp_path)


def invalid_reasons(envelopes):
    return " | ".join(str(e.get("_invalid")) for e in envelopes if "_invalid" in e)


# ---- 1. timestamps without an offset ----------------------------------------------------------

def test_timestamp_without_offset_is_refused_with_the_offset_to_add(world, tmp_path):
    message = refused(policy_mod.parse_time, "2026-03-02T09:00", "--not-before")
    assert "--not-before" in message and "no UTC offset" in message and "+08:00" in message
    # The CLI reports it as an error line, not a ValueError traceback.
    key = world.write_key("henry")
    err = cli_refuses("approve", "--key", key, "--person", "henry", "--role", "it_head", "--stage", "plan_submission",
                      "--change-id", "CHG-1", "--system", "wiki", "--environment", "production", "--change-type",
                      "version_update", "--out", str(tmp_path / "ev") + "/", "--not-before", "2026-03-02T09:00", code=2)
    assert "--not-before" in err and "no UTC offset" in err and "+08:00" in err
    err = cli_refuses("policy", "check", world.policy_path, "--at", "2026-03-02", code=2)
    assert "--at" in err and "no UTC offset" in err
    # An approval's issued_at read by the lead-time rule: a refusal naming the field, not a ValueError.
    message = refused(approval_time, "yesterday", "issued_at")
    assert "issued_at" in message and "ISO 8601" in message


# ---- 2. overflowing durations and times -------------------------------------------------------

def test_overflowing_durations_and_times_are_refused_with_the_range(world, tmp_path):
    message = refused(parse_duration, "99999999999d", "freeze_windows[0].duration")
    assert "freeze_windows[0].duration" in message and "too large" in message
    message = refused(policy_mod.parse_time, "0001-01-01T00:00:00+23:59", "not_before")
    assert "not_before" in message and "out of range" in message
    # The window's clock (change_window `now`, `calendar explain --at`) and the register's filters.
    message = refused(parse_instant, "0001-01-01T00:00", None, "now")
    assert "now" in message and "out of range" in message
    err = cli_refuses("register", "changes", "--since", "9999-12-31T23:00-05:00", code=2)
    assert "--since" in err and "out of range" in err
    key = world.write_key("henry")
    common = ["approve", "--key", key, "--person", "henry", "--role", "it_head", "--stage", "plan_submission",
              "--change-id", "CHG-1", "--system", "wiki", "--environment", "production", "--change-type", "version_update",
              "--out", str(tmp_path / "ev") + "/"]
    err = cli_refuses(*common, "--valid-hours", "99999999999", code=2)
    assert "--valid-hours" in err and "too large" in err
    err = cli_refuses(*common, "--not-before", "9999-12-31T23:00:00+00:00", code=2)
    assert "--not-before" in err and "out of range" in err


# ---- 3. existing or missing output paths ------------------------------------------------------

def test_output_paths_existing_or_in_a_missing_folder_are_refused(world, tmp_path):
    missing = tmp_path / "no-such-folder" / "alice.key"
    err = cli_refuses("keys", "generate", "--out", str(missing))
    assert "no-such-folder" in err and "does not exist" in err and "mkdir -p" in err
    # The .pub beside a new key is never silently overwritten either.
    (tmp_path / "bob.key.pub").write_text("someone else's public key\n")
    err = cli_refuses("keys", "generate", "--out", str(tmp_path / "bob.key"))
    assert "bob.key.pub already exists" in err and "--force" in err
    assert (tmp_path / "bob.key.pub").read_text() == "someone else's public key\n"
    # A signed policy written with --out does not replace an existing file without --force.
    other = tmp_path / "other.yml"
    other.write_text("precious: true\n")
    gov = tmp_path / "gov.key"
    dsse.write_private_key(str(gov), world.gov_keys[0])
    err = cli_refuses("policy", "sign", world.policy_path, "--key", str(gov), "--out", str(other))
    assert "other.yml already exists" in err and "--force" in err
    assert other.read_text() == "precious: true\n"
    folder = world.write_evidence(world.evidence()[:1])
    err = cli_refuses("evidence", "bundle", folder, "--out", str(tmp_path / "nowhere" / "bundle.json"))
    assert "nowhere" in err and "does not exist" in err


# ---- 4. NUL bytes -----------------------------------------------------------------------------

def test_nul_bytes_in_paths_are_refused_by_every_loader(tmp_path):
    bad = str(tmp_path / "evi\0dence")
    for fn in (approvals.load_evidence, policy_mod.read_policy_document, dsse.load_private_key):
        message = refused(fn, bad)
        assert "NUL byte" in message, message
    err = cli_refuses("keys", "show", bad)
    assert "NUL byte" in err


# ---- 5. missing or binary key files -----------------------------------------------------------

def test_missing_binary_and_endless_key_files_are_refused(tmp_path):
    binary = tmp_path / "binary.key"
    binary.write_bytes(bytes(range(256)) * 4)
    endless = tmp_path / "endless.key"
    endless.symlink_to("/dev/zero")
    message = refused(dsse.load_private_key, str(tmp_path / "missing.key"))
    assert "missing.key" in message and "No such file" in message
    message = refused(dsse.load_private_key, str(binary))
    assert "not a PEM private key" in message and "prodgate keys generate" in message
    message = refused(dsse.load_private_key, str(endless))
    assert "character device" in message and "not a regular file" in message
    err = cli_refuses("keys", "show", str(endless))
    assert "character device" in err
    err = cli_refuses("keys", "show", str(binary))
    assert "binary.key" in err


# ---- 6. deeply nested JSON --------------------------------------------------------------------

def test_deeply_nested_json_evidence_is_an_invalid_envelope_not_a_recursion_error(world, tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (folder / "moderate.json").write_text("{\"a\": " * 500 + "1" + "}" * 500)
    envelopes = returned(approvals.load_evidence, str(folder))
    reasons = invalid_reasons(envelopes)
    assert reasons.count("deeper than 64 levels") == 2, reasons
    # A signed payload nested deeply (a signer's mistake, or a tool that went wrong) is one envelope
    # problem of the gate, not a RecursionError out of it.
    payload = ("[" * 100_000 + "]" * 100_000).encode()
    sig = world.keys["henry"].sign(dsse.pae(dsse.INTOTO_PAYLOAD_TYPE, payload))
    keyid = dsse.keyid_of(dsse.public_key_hex(world.keys["henry"].public_key()))
    envelope = {"payload": dsse.b64encode(payload), "payloadType": dsse.INTOTO_PAYLOAD_TYPE,
                "signatures": [{"keyid": keyid, "sig": dsse.b64encode(sig)}], "_source": "deep-payload.json"}

    def verify():
        report = gate.verify_evidence(world.policy(), [envelope], world.binding())
        return report.envelope_problems
    problems = " | ".join(returned(verify))
    assert "deep-payload.json" in problems and "deeper than 64 levels" in problems and "re-sign" in problems


# ---- 7. YAML alias expansion before the signature check ---------------------------------------

LAUGHS = "lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9))


def test_yaml_aliases_are_refused_before_anything_is_expanded(world, tmp_path):
    bomb = tmp_path / "laughs.yml"
    bomb.write_text(LAUGHS)
    message = refused(policy_mod.read_policy_document, str(bomb))
    assert "anchor or alias" in message and "write the repeated value in full" in message
    # In a signed policy too: refused before the signature check would expand it (9^10 strings).
    with open(world.policy_path, "a", encoding="utf-8") as handle:
        handle.write("x_bomb:\n" + "".join(f"  {line}\n" for line in LAUGHS.splitlines()))
    message = refused(policy_mod.load_policy, world.policy_path, seconds=DEADLINE)
    assert "anchor or alias" in message and "policy.yml" in message
    # The change file of `prodgate approve` / `evidence verify` is read the same way.
    world.sign_policy()
    change = tmp_path / "change.yml"
    change.write_text("change_id: &id CHG-1\nsystem: wiki\nenvironment: production\nchange_type: version_update\n"
                      "x: [*id, *id]\n")
    err = cli_refuses("evidence", "verify", "--policy", world.policy_path, "--evidence", str(tmp_path), "--change", str(change))
    assert "change file" in err and "anchor or alias" in err


# ---- 8. special files in the evidence folder ----------------------------------------------------

def test_special_files_in_the_evidence_folder_never_hang_and_are_named(world, tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    os.mkfifo(folder / "fifo.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    (folder / "folder.json").mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(world.evidence()[0]))
    (folder / "escape.json").symlink_to(outside)
    envelopes = returned(approvals.load_evidence, str(folder))
    by_source = {e["_source"]: str(e.get("_invalid")) for e in envelopes}
    assert "FIFO" in by_source["fifo.json"] and "regular file" in by_source["fifo.json"]
    assert "character device" in by_source["zero.json"]
    assert "folder" in by_source["folder.json"]
    assert "outside the evidence folder" in by_source["escape.json"]
    # Each is a gate refusal naming the file, not a pass and not a hang.

    def gate_problems():
        return gate.verify_evidence(world.policy(), approvals.load_evidence(str(folder)), world.binding()).problems
    problems = " | ".join(returned(gate_problems))
    for name in ("fifo.json", "zero.json", "folder.json", "escape.json"):
        assert f"evidence {name}" in problems
    # A FIFO or device given as the evidence or the policy itself.
    message = refused(approvals.load_evidence, str(folder / "fifo.json"))
    assert "FIFO" in message and "prodgate_evidence" in message
    message = refused(policy_mod.read_policy_document, str(folder / "fifo.json"))
    assert "FIFO" in message and "regular file" in message
    message = refused(policy_mod.read_policy_document, "/dev/zero")
    assert "character device" in message
    err = cli_refuses("calendar", "explain", "--draft", str(folder / "fifo.json"), "--system", "wiki")
    assert "FIFO" in err


# ---- 9. a ledger with an old schema -------------------------------------------------------------

OLD_LEDGER_SCHEMA = """
CREATE TABLE consumed_nonce (nonce TEXT PRIMARY KEY, change_id TEXT NOT NULL, consumed_at TEXT NOT NULL, job_id TEXT);
CREATE TABLE completed_change (change_id TEXT PRIMARY KEY, completed_at TEXT NOT NULL, job_id TEXT);
INSERT INTO consumed_nonce VALUES ('0123456789abcdef0123', 'CHG-1', '2026-01-01T00:00:00+00:00', NULL);
"""


def test_a_ledger_of_the_old_schema_is_refused_naming_the_migration(tmp_path):
    old = tmp_path / "ledger.sqlite"
    with sqlite3.connect(old) as db:
        db.executescript(OLD_LEDGER_SCHEMA)
    message = refused(Ledger.open, str(old))
    assert "old" in message and "consumed_nonce" in message and "migrat" in message
    assert "1 consumed approval" in message
    # Refused, not silently turned into an empty register that would let the approval pass again.
    with sqlite3.connect(old) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"consumed_nonce", "completed_change"}
    # The migration the message names: the consumed approval stays consumed in the change register.
    register = tmp_path / "register.db"
    code, err = cli("ledger", "import", str(old), "--db", str(register))
    assert code == 0, err

    def consumed():
        with Ledger.open(str(register)) as ledger:
            return ledger.consumed(["0123456789abcdef0123"])
    assert returned(consumed) == {"0123456789abcdef0123": ("CHG-1", "2026-01-01T00:00:00+00:00")}
    code, err = cli("ledger", "import", str(register), "--db", str(register))
    assert code == 1 and "cannot be read as a ledger of the old schema" in err


# ---- 10. size limits ------------------------------------------------------------------------------

def test_oversized_evidence_and_policy_files_are_refused_after_a_bounded_read(world, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    envelope = json.dumps(world.evidence()[0])
    (folder / "big.json").write_text(envelope[:-1] + " " * (17 * MiB) + "}")
    envelopes = returned(approvals.load_evidence, str(folder))
    assert "larger than 16 MiB" in invalid_reasons(envelopes)
    with open(world.policy_path, "a", encoding="utf-8") as handle:
        handle.write("#" + " " * (17 * MiB) + "\n")
    message = refused(policy_mod.read_policy_document, world.policy_path)
    assert "larger than 16 MiB" in message and "policy.yml" in message


# ---- properties: random bytes, deep nesting, special files --------------------------------------

PROPERTY = settings(max_examples=60, deadline=timedelta(seconds=DEADLINE),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def _loaders(world):
    def evidence(path):
        return approvals.load_evidence(path)

    def evidence_folder(path):
        folder = os.path.dirname(path)
        envelopes = approvals.load_evidence(folder)
        return gate.verify_evidence(world.policy(), envelopes, world.binding()).ok

    def policy(path):
        return policy_mod.load_policy(path)
    return (evidence, evidence_folder, policy, policy_mod.read_policy_document)


def _only_refusals(result):
    assert result[0] in ("returned", "refused"), f"only a ProdgateError may escape a loader, got {reprlib.repr(result)}"
    if result[0] == "returned":
        assert result[1] is not True, "junk passed the gate"


nesting = st.tuples(st.sampled_from(["[", "{\"a\":", "- ", "a:\n  ", "[{\"b\":"]), st.integers(1, 5000)).map(
    lambda t: (t[0] * t[1]).encode())


@PROPERTY
@given(data=st.one_of(st.binary(max_size=4096), nesting,
                      st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_random_bytes_and_deep_nesting_only_ever_refuse(tmp_path_factory, data):
    world = _WORLD.get("world") or _WORLD.setdefault("world", World(tmp_path_factory.mktemp("world")))
    folder = tmp_path_factory.mktemp("fuzz")
    path = str(folder / "input.json")
    _write(path, data)
    for loader in _loaders(world):
        _only_refusals(bounded(loader, path))


_WORLD = {}
SPECIAL = ("fifo", "dev_zero", "dev_null", "folder", "loop_to_folder", "dangling", "tty")


@PROPERTY
@given(kind=st.sampled_from(SPECIAL), name=st.sampled_from(["input.json", "policy.yml"]))
def test_special_files_only_ever_refuse(tmp_path_factory, kind, name):
    world = _WORLD.get("world") or _WORLD.setdefault("world", World(tmp_path_factory.mktemp("world")))
    folder = tmp_path_factory.mktemp("special")
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "dev_null":
        path.symlink_to("/dev/null")
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop_to_folder":
        path.symlink_to(folder)
    elif kind == "dangling":
        path.symlink_to(folder / "nothing-here")
    else:
        path.symlink_to("/dev/tty")
    for loader in _loaders(world):
        result = bounded(loader, str(path))
        _only_refusals(result)
    assert stat.S_ISDIR(os.stat(folder).st_mode)
