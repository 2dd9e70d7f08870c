"""The one way every adapter (gate, window, completion, callback, CLI) reaches the policy and the
register: from the controller's trust settings, never from the run (issue 11, Deliver 1-3).

:func:`open_trusted` returns the controller settings, the register's single-use ledger and the
verified policy: pinned governance root (refused unpinned in production), expiry, schema, and the
anti-rollback check against the highest version this register has accepted under that root.
"""
import os
from dataclasses import dataclass, field

from .governance.change import RUN_VARIABLES, TARGETS_VARIABLE, build_change
from .controller import RUN_OVERRIDES, load_settings, refuse_run_overrides
from .errors import TrustError
from .errors import PolicyError
from .register.ledger import Ledger
from .base import utcnow
from .governance.policy import load_policy


@dataclass
class Trusted:
    settings: object
    policy: object
    ledger: object = None
    warnings: list = field(default_factory=list)

    def close(self):
        if self.ledger is not None:
            self.ledger.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_trusted_policy(settings, ledger=None, now=None, environment=None):
    """(policy, warnings) of the controller's policy. Production refuses an unpinned policy."""
    path = settings.require("policy")
    policy = load_policy(path, now=now or utcnow(), root=settings.policy_root)
    warnings = []
    if not policy.pinned:
        if environment is None or policy.is_production(environment):
            where = f"environment {environment}" if environment else "a run that may touch production"
            raise PolicyError(f"policy {path} is not pinned to a governance root, which {where} refuses: the controller's "
                              "administrator sets `policy_root` in the controller trust settings "
                              "(docs/approvals.md#controller-trust-settings)")
        warnings.append(f"policy {path} is not pinned to a governance root (allowed only outside production): set "
                        "`policy_root` in the controller trust settings")
    if ledger is not None:
        ledger.accept_policy_version(policy.root_id, policy.version, path)
    return policy, warnings


def open_trusted(run_vars=None, options=(), environment=None, now=None, environ=None, with_ledger=True):
    """Settings, ledger and policy for one decision. Refuses run overrides first."""
    refuse_run_overrides(run_vars or {}, options)
    settings = load_settings(os.environ if environ is None else environ)
    ledger = None
    if with_ledger:
        ledger = Ledger.open(settings.require("register_db"), awx=settings.awx)
    try:
        policy, warnings = load_trusted_policy(settings, ledger, now=now, environment=environment)
    except Exception:
        if ledger is not None:
            ledger.close()
        raise
    return Trusted(settings=settings, policy=policy, ledger=ledger, warnings=warnings)


# Run variables an adapter reads: the change's, those that are refused, and AWX's identity.
AWX_VARIABLES = ("awx_user_name", "tower_user_name", "awx_job_id", "tower_job_id")


def collect_run_vars(task_vars, template):
    """The run variables a decision reads, templated with ``template`` (the adapter's templar)."""
    out = {}
    for name in tuple(RUN_VARIABLES.values()) + tuple(RUN_OVERRIDES) + AWX_VARIABLES:
        if task_vars.get(name) is not None:
            out[name] = template(task_vars[name])
    # A magic variable that is always a plain list of host names: no templating (1,000 hosts would
    # be rendered one by one, bench/gate_bench.py).
    out[TARGETS_VARIABLE] = list(task_vars.get(TARGETS_VARIABLE) or [])
    return out


def pop_refused(task_args, refused_options):
    """Remove from a task's options the former ones that chose trust settings (the argument spec would
    reject them without saying where the setting belongs) and return them, for :func:`task_change`."""
    refused = [o for o in refused_options if o in task_args]
    for option in refused:
        task_args.pop(option)
    return refused


def task_change(options, task_vars, template, refused=()):
    """(change, run_vars) of an adapter's task: the run variables it reads (:func:`collect_run_vars`),
    run overrides and the ``refused`` options refused, and the change built from the task's validated
    ``options`` first and the run variables then. The adapter requires the fields it needs."""
    run_vars = collect_run_vars(task_vars or {}, template)
    refuse_run_overrides(run_vars, refused)
    return build_change(options, run_vars), run_vars


def rehearsal(task_check_mode, run_check_mode):
    """True for a rehearsal (the whole run under --check). Check mode on a gate task alone would pass
    and consume nothing while the next tasks run for real, any number of times: refused, and so is
    a gate forced out of check mode inside a rehearsal (it would consume approvals for a run that
    changes nothing)."""
    task_check_mode, run_check_mode = bool(task_check_mode), bool(run_check_mode)
    if task_check_mode and not run_check_mode:
        raise TrustError("check_mode on this task alone is refused: the gate would pass without consuming while the "
                         "next tasks run for real; rehearse the whole run with --check instead")
    if run_check_mode and not task_check_mode:
        raise TrustError("check_mode: false on this task inside a --check rehearsal is refused: a rehearsal consumes "
                         "nothing and changes nothing; remove check_mode from the task")
    return run_check_mode


# Run options that make Ansible skip tasks it would otherwise run: the gate and the window among them.
SKIPPING_OPTIONS = {"skip_tags": "--skip-tags", "start_at_task": "--start-at-task", "step": "--step"}


def skipping_options(cliargs):
    """The run options that would skip tasks of a production change (refused by the register callback)."""
    return [flag for key, flag in SKIPPING_OPTIONS.items() if cliargs.get(key)]
