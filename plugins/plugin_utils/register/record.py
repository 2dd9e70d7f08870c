"""Change register: canonical JSON, redaction and the pure record builders (Art. 22(5), 25, 27).

Everything here is pure Python on plain dicts, so the callback plugin stays a thin adapter and the
tests call these functions directly. Redaction happens *before* an entry is hashed: once a value
is in the chain it can never be removed, so the decision is taken here, once, at capture time.
"""
import hashlib
import math
import re

from ..base import canonical_json
from ..governance.change import Change, build_change, problems as change_problems

MASK = "********"

# Keys whose values are masked wherever they appear (module args, diff dicts, approvals, vars).
# Documented in docs/change-register.md ("Redaction"); keep the two in step.
SECRET_KEY_RE = re.compile(
    r"(passw(or)?d|passphrase|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|"
    r"client[_-]?key|credential|cookie|bearer|authorization|auth[_-]?(key|token|header|pass)|otp|"
    r"vault[_-]?pass|ssh[_-]?key|license[_-]?key|dsn|connection[_-]?string)",
    re.IGNORECASE,
)
# Secret-looking assignments inside free text (diffs, messages): `password = x`, `token: x`, ...
_SECRET_ASSIGN_RE = re.compile(
    r"(?P<key>\b[\w.-]*(passw(or)?d|passphrase|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|"
    r"access[_-]?key|credential|auth[_-]?token)[\w.-]*\b[\"']?)(?P<sep>\s*[:=]\s*|\s+)(?P<val>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;\"'}]+)",
    re.IGNORECASE,
)
_PEM_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.DOTALL)
_URL_CRED_RE = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<pw>[^@\s/]+)(?P<at>@)", re.IGNORECASE)
_BEARER_RE = re.compile(r"(?P<pre>\b(bearer|basic)\s+)(?P<val>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)

MAX_TEXT = 200_000  # characters kept of any one string (Ansible's own diff cap is ~100 KiB)


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def plain(value, _depth=0):
    """Reduce any value to JSON types; floats become ints when integral, else strings.

    Floats are kept out of hashed bodies on purpose: their text form is not canonical across
    implementations, so an auditor re-serialising a body in another language would disagree.
    """
    if _depth > 64:
        return "<nested too deep>"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return int(value) if value.is_integer() else repr(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): plain(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v, _depth + 1) for v in value), key=canonical_json)
    return str(value)


def is_secret_key(key):
    return bool(SECRET_KEY_RE.search(str(key)))


def redact_text(text, known_secrets=()):
    """Mask secret-looking material inside free text: assignments, PEM keys, URL passwords."""
    if not isinstance(text, str) or not text:
        return text
    for secret in known_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _PEM_RE.sub("-----BEGIN PRIVATE KEY-----" + MASK + "-----END PRIVATE KEY-----", text)
    text = _URL_CRED_RE.sub(lambda m: m.group("pre") + MASK + m.group("at"), text)
    text = _BEARER_RE.sub(lambda m: m.group("pre") + MASK, text)
    text = _SECRET_ASSIGN_RE.sub(lambda m: m.group("key") + m.group("sep") + MASK, text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"... [{len(text) - MAX_TEXT} characters cut]"
    return text


def redact(value, known_secrets=()):
    """Return a redacted copy of any JSON-like value (keys by name, strings by content)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if is_secret_key(key) and item not in (None, "", [], {}) and not isinstance(item, bool):
                out[key] = MASK
            else:
                out[key] = redact(item, known_secrets)
        return out
    if isinstance(value, list):
        return [redact(v, known_secrets) for v in value]
    if isinstance(value, str):
        return redact_text(value, known_secrets)
    return value


def normalise_diff(diff, known_secrets=(), mode="full"):
    """Ansible diffs are a dict or a list of dicts (before/after, headers, or `prepared`).

    mode "full" keeps the redacted before/after; "hash" keeps only their SHA-256 (plus headers),
    for systems whose configuration must not be copied into the register at all.
    """
    if not diff:
        return None
    items = diff if isinstance(diff, list) else [diff]
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        entry = {}
        for key in ("before_header", "after_header"):
            if item.get(key) is not None:
                entry[key] = redact_text(str(item[key]), known_secrets)
        for key in ("before", "after", "prepared"):
            if key not in item or item[key] is None:
                continue
            val = redact(plain(item[key]), known_secrets)
            if mode == "hash":
                entry[key + "_sha256"] = sha256_hex(val if isinstance(val, str) else canonical_json(val))
            else:
                entry[key] = val
        for key in ("dst_binary", "src_binary", "dst_larger", "src_larger"):
            if key in item:
                entry[key] = plain(item[key])
        if entry:
            out.append(entry)
    return out or None


def is_censored(result):
    return bool(result.get("censored")) or bool(result.get("_ansible_no_log"))


def _module_args(result, known_secrets):
    inv = result.get("invocation")
    if isinstance(inv, dict) and isinstance(inv.get("module_args"), dict):
        # Unset parameters (None) say nothing about the change; leaving them out keeps entries small.
        return redact({k: v for k, v in plain(inv["module_args"]).items() if v is not None}, known_secrets)
    return None


def _add_details(rec, result, known_secrets, diff_mode):
    """The module arguments and the diff of a result (or of one loop item of it), where it has them."""
    args = _module_args(result, known_secrets)
    if args is not None:
        rec["args"] = args
    diff = normalise_diff(result.get("diff"), known_secrets, diff_mode)
    if diff:
        rec["diff"] = diff


def _message(msg, known_secrets):
    """A failure message as the register keeps it: redacted, at most 4000 characters."""
    return redact_text(str(msg)[:4000], known_secrets)


def _item_record(item, known_secrets, diff_mode):
    if not isinstance(item, dict):
        return {"result": redact(plain(item), known_secrets)}
    if is_censored(item):
        return {"censored": True, "changed": bool(item.get("changed"))}
    rec = {"changed": bool(item.get("changed"))}
    for flag in ("failed", "skipped", "unreachable"):
        if item.get(flag):
            rec[flag] = True
    label = item.get("_ansible_item_label", item.get("item"))
    if label is not None:
        rec["item"] = redact(plain(label), known_secrets)
    _add_details(rec, item, known_secrets, diff_mode)
    if item.get("msg") and (item.get("failed") or item.get("unreachable")):
        rec["msg"] = _message(item["msg"], known_secrets)
    return rec


# Tasks carrying this tag switch a host back to an earlier release (roles/release/tasks/rollback.yml);
# their changed outcomes are the "rollback" of the change form, in the same run or in a later one.
ROLLBACK_TAG = "prodgate_rollback"

# Results of these actions are evidence for the form (issue 3 approval gate, issue 4 window).
EVIDENCE_ACTIONS = {
    "prodgate.deploy.approval_gate": ("approvals", "change_id", "required_stages", "implementers", "supervisor",
                                      "launcher", "policy_version", "consumed", "performed_stage", "checked_stages",
                                      "pending_stages"),
    "prodgate.deploy.change_window": ("allowed", "open", "frozen", "window", "lead_time", "override_used", "override",
                                      "evaluated_at"),
}


def evidence_kind(module):
    if module in EVIDENCE_ACTIONS:
        return module.rsplit(".", 1)[-1]
    short = {k.rsplit(".", 1)[-1]: k for k in EVIDENCE_ACTIONS}
    if module in short:
        return module
    return None


def _task_entry(kind, run_id, host, task, ts):
    """The fields every per-task entry carries (intent and outcome alike)."""
    entry = {
        "kind": kind,
        "run": run_id,
        "ts": ts,
        "host": host,
        "task": task.get("name"),
        "task_uuid": task.get("uuid"),
        "module": task.get("module"),
        "role": task.get("role"),
        "check_mode": bool(task.get("check_mode")),
    }
    if task.get("tags"):
        # e.g. ROLLBACK_TAG: the form lists the rollback a run made inside the change (Art. 27, 28)
        entry["tags"] = list(task["tags"])
    return entry


def build_intent(run_id, host, task, ts):
    """The entry written when a task is queued for a host, before its worker starts."""
    entry = _task_entry("intent", run_id, host, task, ts)
    entry["handler"] = bool(task.get("handler"))
    return entry


def build_outcome(run_id, host, task, status, result, ts, duration_ms=None, known_secrets=(),
                  diff_mode="full", detail=True):
    """The entry for a result. ``result`` is the callback's (already no_log-censored) result dict.

    Never pass ``task.args`` here: it holds templated secrets even under no_log. Arguments come
    only from ``invocation.module_args``, where modules have masked their no_log parameters.
    """
    result = result if isinstance(result, dict) else {}
    entry = _task_entry("outcome", run_id, host, task, ts)
    entry["status"] = status
    entry["changed"] = bool(result.get("changed"))
    if duration_ms is not None:
        entry["duration_ms"] = int(duration_ms)
    if task.get("no_log") or is_censored(result):
        # Art. 27 still needs to know that something changed; nothing else may be kept.
        entry["censored"] = True
        return entry
    if not detail:
        return entry
    _add_details(entry, result, known_secrets, diff_mode)
    if isinstance(result.get("results"), list):
        entry["items"] = [_item_record(i, known_secrets, diff_mode) for i in result["results"]]
    if status in ("failed", "unreachable") and result.get("msg"):
        entry["msg"] = _message(result["msg"], known_secrets)
    if "rc" in result and isinstance(result.get("rc"), int):
        entry["rc"] = result["rc"]
    kind = evidence_kind(task.get("module") or "")
    if kind and status == "ok":
        fields = EVIDENCE_ACTIONS["prodgate.deploy." + kind]
        entry["evidence"] = {"type": kind, **{f: redact(plain(result[f]), known_secrets) for f in fields if f in result}}
    return entry


def _first(mapping, *names):
    for name in names:
        val = mapping.get(name)
        if val not in (None, ""):
            return val
    return None


def run_metadata(extra_vars, env):
    """Change and AWX identity of a run, from its extra vars and environment.

    AWX injects ``awx_*`` and ``tower_*`` meta variables and ``JOB_ID``/``PROJECT_REVISION`` into
    the job environment; prodgate's own ``prodgate_*`` extra vars carry the change (Art. 25, 27).
    """
    ev = plain(extra_vars or {})
    change = build_change(run_vars=ev).register_fields()
    awx = {
        "job_id": _first(ev, "awx_job_id", "tower_job_id") or env.get("JOB_ID"),
        "job_template": _first(ev, "awx_job_template_name", "tower_job_template_name"),
        "launch_type": _first(ev, "awx_job_launch_type", "tower_job_launch_type"),
        "user_name": _first(ev, "awx_user_name", "tower_user_name"),
        "user_id": _first(ev, "awx_user_id", "tower_user_id"),
        "workflow_job_id": _first(ev, "awx_workflow_job_id", "tower_workflow_job_id"),
        "schedule_id": _first(ev, "awx_schedule_id", "tower_schedule_id"),
        "inventory": _first(ev, "awx_inventory_name", "tower_inventory_name"),
        "host": env.get("AWX_HOST"),
    }
    awx = {k: redact(plain(v)) for k, v in awx.items() if v not in (None, "")}
    revision = _first(ev, "awx_project_revision", "tower_project_revision") or env.get("PROJECT_REVISION")
    return {"change": redact(change), "awx": awx or None, "project_revision": revision}


def validate_change(change, policy=None):
    """Problems with the run's change fields (reported, and refused when the change is required).
    ``change`` is the register's form of the change (:meth:`governance.change.Change.register_fields`)."""
    return change_problems(Change(change_id=change.get("id"), change_type=change.get("type")), policy)
