"""What a change is: its fields, the run variables they come from, their normalisation, its change
types (read from the signed policy) and its target set. The gate, the window, the completion, the
callback and the CLI build a change through this module and nowhere else (issue 11, Deliver 8).
"""
from dataclasses import asdict, dataclass, field

from ..errors import ApprovalError

# field -> run variable it defaults from (a task option of the same name wins)
RUN_VARIABLES = {
    "change_id": "prodgate_change_id",
    "change_type": "prodgate_change_type",
    "system": "prodgate_system",
    "environment": "prodgate_environment",
    "version": "prodgate_version",
    "artifacts": "prodgate_artifacts",
    "implementers": "prodgate_implementers",
    "supervisor": "prodgate_supervisor",
    "plan_digest": "prodgate_plan",
    "evidence": "prodgate_evidence",
    "rollback_of": "prodgate_rollback_of",
}
LIST_FIELDS = ("artifacts", "implementers", "targets")
# The hosts a change covers: every host of the play (never the current batch, which would let a
# serial play's later batches differ from what was approved).
TARGETS_VARIABLE = "ansible_play_hosts_all"
REQUIRED = ("change_id", "change_type", "system", "environment")


def as_list(value):
    """A list of non-empty strings: "alice, bob" and ["alice", "bob"] are the same two people."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, (list, tuple, set)):
        out = []
        for item in value:
            out.extend(as_list(item) if isinstance(item, str) else [str(item)])
        return out
    return [str(value)]


def _text(value):
    return None if value in (None, "") else str(value).strip()


@dataclass
class Change:  # pylint: disable=too-many-instance-attributes
    change_id: str = None
    change_type: str = None
    system: str = None
    environment: str = None
    version: str = None
    artifacts: list = field(default_factory=list)
    implementers: list = field(default_factory=list)
    supervisor: str = None
    plan_digest: str = None
    evidence: str = None
    rollback_of: str = None
    targets: list = field(default_factory=list)
    emergency: bool = False

    def as_dict(self):
        return asdict(self)

    def binding(self, launcher=None):
        """What the approvals must be bound to (gate.verify_evidence)."""
        return {"change_id": self.change_id, "system": self.system, "environment": self.environment,
                "change_type": self.change_type, "version": self.version, "artifacts": list(self.artifacts),
                "targets": list(self.targets), "plan_digest": self.plan_digest, "implementers": list(self.implementers),
                "supervisor": self.supervisor, "launcher": launcher, "emergency": self.emergency}

    def register_fields(self):
        """The change as the register records it on a run."""
        return {"id": self.change_id, "type": self.change_type, "system": self.system, "environment": self.environment,
                "version": self.version, "implementers": list(self.implementers), "supervisor": self.supervisor,
                "rollback_of": self.rollback_of}


def build_change(options=None, run_vars=None, targets=None):
    """A :class:`Change` from task options (first) and run variables (then), normalised.

    ``run_vars`` is a mapping of already-templated values; ``targets`` defaults to the play's hosts
    (``ansible_play_hosts_all``) from ``run_vars``.
    """
    options, run_vars = options or {}, run_vars or {}
    values = {}
    for name, var in RUN_VARIABLES.items():
        value = options.get(name)
        if value in (None, "", []):
            value = run_vars.get(var)
        values[name] = value
    if targets in (None, []):
        targets = options.get("targets") or run_vars.get(TARGETS_VARIABLE) or []
    change = Change(**{k: (as_list(v) if k in LIST_FIELDS else _text(v)) for k, v in values.items()})
    change.targets = as_list(targets)
    change.emergency = bool(options.get("emergency", False))
    return change


def change_types(policy=None):
    """The change types the signed policy defines (Art. 25 plus the first go-live)."""
    if policy is not None:
        return list(policy.rules["change_types"])
    from .policy_schema import defaults  # pylint: disable=import-outside-toplevel  # policy_schema imports schedule, which the change model need not load
    return list(defaults()["change_types"])


def problems(change, policy=None):
    """What is missing or invalid in a change's registration (reported; refused where required)."""
    out = []
    if not change.change_id:
        out.append("prodgate_change_id is not set: pass -e prodgate_change_id=CHG-...")
    types = change_types(policy)
    if not change.change_type:
        out.append(f"prodgate_change_type is not set: one of {', '.join(types)} (Art. 25)")
    elif change.change_type not in types:
        out.append(f"prodgate_change_type {change.change_type!r} is not one of {', '.join(types)} (Art. 25)")
    return out


def require(change, what, fields=REQUIRED):
    """ApprovalError naming the missing fields and their run variables."""
    missing = [f for f in fields if not getattr(change, f)]
    if missing:
        raise ApprovalError(f"{what} needs " + ", ".join(missing) + ": set the option(s) or the run variable(s) "
                            + ", ".join(RUN_VARIABLES[f] for f in missing))
