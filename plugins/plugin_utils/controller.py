"""Controller trust settings: what the run cannot choose (issue 11, threat model in docs/approvals.md).

The pinned governance root, the signed policy's location, the change register (which also holds
the single-use ledger) with its signing key, anchor and journal, and the environments in which a
test clock is honoured come from the controller's administrator, never from the run:

* a root-owned file, ``/etc/prodgate/controller.yml``, neither it nor its directory writable by
  group or others (``PRODGATE_CONTROLLER_CONFIG`` may name another root-owned file, and is
  honoured only when root runs the command: the administrator, the lab and the tests); or
* in an AWX execution environment, whose image carries a controller.yml with
  ``settings_from_environment: true``: the ``PRODGATE_*`` environment variables that an AWX
  credential injects (a launcher cannot set environment variables of an AWX job).

Run variables that try to set any of these are refused (:func:`refuse_run_overrides`), naming the
variable and where the setting belongs.
"""
import os
import pwd
import stat
from dataclasses import dataclass, field

import yaml

from .errors import TrustError

DEFAULT_CONFIG = "/etc/prodgate/controller.yml"
CONFIG_ENV = "PRODGATE_CONTROLLER_CONFIG"
MAX_CONFIG_BYTES = 1 << 20

# setting -> (controller.yml key path, environment variable an AWX credential injects)
SETTINGS = {
    "policy": (("policy",), "PRODGATE_POLICY"),
    "policy_root": (("policy_root",), "PRODGATE_POLICY_ROOT"),
    "register_db": (("register", "db"), "PRODGATE_REGISTER_DB"),
    "register_signing_key": (("register", "signing_key"), "PRODGATE_REGISTER_SIGNING_KEY"),
    "register_anchor": (("register", "anchor"), "PRODGATE_REGISTER_ANCHOR"),
    "register_journal_dir": (("register", "journal_dir"), "PRODGATE_REGISTER_JOURNAL_DIR"),
    "register_witness": (("register", "witness"), "PRODGATE_REGISTER_WITNESS"),
    "test_clock_environments": (("test_clock_environments",), "PRODGATE_TEST_CLOCK_ENVIRONMENTS"),
}
TOP_KEYS = {"policy", "policy_root", "register", "test_clock_environments", "settings_from_environment", "awx"}
REGISTER_KEYS = {"db", "signing_key", "anchor", "journal_dir", "witness"}

# Run variables (and their old task options) that used to choose trust settings: refused.
RUN_OVERRIDES = {
    "prodgate_policy": "policy",
    "prodgate_policy_root": "policy_root",
    "prodgate_ledger": "register_db",
    "prodgate_register_db": "register_db",
    "prodgate_register_signing_key": "register_signing_key",
    "prodgate_register_anchor": "register_anchor",
    "prodgate_register_journal_dir": "register_journal_dir",
    "prodgate_register_witness": "register_witness",
    "prodgate_test_clock_environments": "test_clock_environments",
    "delivery_gates": None,
}
PRODUCTION_NAMES = ("production", "prod")


def credential_of(setting):
    """The AWX credential type that injects ``setting`` (awx/objects.yml)."""
    return "prodgate change register" if setting.startswith("register_") else "prodgate governance"


def where_it_belongs(setting):
    keys, env = SETTINGS[setting]
    return (f"`{'.'.join(keys)}` in {DEFAULT_CONFIG} (the controller's administrator sets it), or the AWX credential "
            f"'{credential_of(setting)}' that injects {env}")


@dataclass
class ControllerSettings:  # pylint: disable=too-many-instance-attributes
    """The trust settings of this controller (see the module docstring)."""
    source: str
    policy: str = None
    policy_root: str = None
    register_db: str = None
    register_signing_key: str = None
    register_anchor: str = None
    register_journal_dir: str = None
    register_witness: str = None
    test_clock_environments: list = field(default_factory=list)
    from_environment: bool = False
    awx: bool = False

    def test_clock_allowed(self, environment, production=None):
        """A test clock only in an environment the administrator listed, and never in production."""
        if production or str(environment).lower() in PRODUCTION_NAMES:
            return False
        return environment in self.test_clock_environments

    def require(self, setting):
        value = getattr(self, setting)
        if value in (None, ""):
            raise TrustError(f"the controller trust setting {'.'.join(SETTINGS[setting][0])} is not set ({self.source}); "
                             f"set {where_it_belongs(setting)}")
        return value


def _check_file_safe(path, what):
    """Refuse a trust file that someone other than root could have written."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise TrustError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise TrustError(f"{what} {path} is not a regular file")
    directory = os.path.dirname(os.path.abspath(path))
    dst = os.stat(directory)
    for target, tst in ((path, st), (directory, dst)):
        if tst.st_uid != 0:
            raise TrustError(f"{what} {target} is owned by uid {tst.st_uid}, not by root: only the controller's "
                             "administrator may write trust settings")
    # A sticky directory (like /tmp) lets nobody replace another user's file.
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or (dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not dst.st_mode & stat.S_ISVTX):
        target, mode = (path, st.st_mode) if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) else (directory, dst.st_mode)
        raise TrustError(f"{what} {target} is writable by group or others (mode {stat.S_IMODE(mode):o}): "
                         f"make it writable by its owner only (chmod go-w {target})")


def _read_config(path):
    _check_file_safe(path, "controller settings")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise TrustError(f"controller settings {path} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise TrustError(f"controller settings {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TrustError(f"controller settings {path} is not valid UTF-8 YAML: {exc}") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise TrustError(f"controller settings {path} must be a mapping (see docs/approvals.md#controller-trust-settings)")
    unknown = sorted(set(map(str, doc)) - TOP_KEYS)
    if unknown:
        raise TrustError(f"controller settings {path}: unknown key(s) {unknown}; allowed are {sorted(TOP_KEYS)}")
    register = doc.get("register") or {}
    if not isinstance(register, dict) or set(map(str, register)) - REGISTER_KEYS:
        raise TrustError(f"controller settings {path}: `register` must be a mapping with keys {sorted(REGISTER_KEYS)}")
    return doc


def _lookup(doc, keys):
    value = doc
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _as_list(value, where):
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TrustError(f"{where}: expected a list of environment names")
    bad = [v for v in value if v.lower() in PRODUCTION_NAMES]
    if bad:
        raise TrustError(f"{where}: a test clock is never allowed in production ({', '.join(bad)}); remove it")
    return value


def load_settings(environ=None):
    """The controller's :class:`ControllerSettings`; TrustError when missing or unsafe."""
    environ = os.environ if environ is None else environ
    path = environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    if "\x00" in path:
        raise TrustError(f"{CONFIG_ENV} contains a NUL byte")
    if environ.get(CONFIG_ENV) and os.getuid() != 0:
        # A launcher must not choose the file that decides trust (it could name any root-owned file
        # that says settings_from_environment, then set the environment).
        raise TrustError(f"{CONFIG_ENV} is honoured only when root runs the command (the administrator, the lab, the "
                         f"tests); unset it: this controller's trust settings are {DEFAULT_CONFIG}")
    if not os.path.exists(path):
        raise TrustError(f"this controller has no trust settings: {path} does not exist. The controller's administrator "
                         f"creates it (root-owned, mode 0644) with the pinned governance root, the signed policy and the "
                         "change register: see docs/approvals.md#controller-trust-settings")
    doc = _read_config(path)
    from_env = doc.get("settings_from_environment", False)
    if not isinstance(from_env, bool):
        raise TrustError(f"controller settings {path}: settings_from_environment must be true or false")
    awx = doc.get("awx", from_env)
    if not isinstance(awx, bool):
        raise TrustError(f"controller settings {path}: awx must be true or false")
    values = {}
    for name, (keys, env) in SETTINGS.items():
        value = _lookup(doc, keys)
        if from_env and environ.get(env) not in (None, ""):
            value = environ[env]
        elif not from_env and environ.get(env) not in (None, "") and str(value) != environ[env]:
            raise TrustError(f"environment variable {env} is set, but on this controller the setting comes from {path} "
                             f"(settings_from_environment is false): unset {env}; only the administrator changes "
                             f"`{'.'.join(keys)}` there")
        if value is not None and not isinstance(value, (str, list)):
            raise TrustError(f"controller settings {path}: {'.'.join(keys)} must be a string")
        if isinstance(value, str) and "\x00" in value:
            raise TrustError(f"controller settings {path}: {'.'.join(keys)} contains a NUL byte")
        values[name] = value
    values["test_clock_environments"] = _as_list(values["test_clock_environments"], f"{path}: test_clock_environments")
    for name in ("policy", "policy_root", "register_signing_key", "register_journal_dir"):
        if values[name]:
            values[name] = os.path.expanduser(values[name])
    source = f"{path}" + (" and the AWX credential's environment variables" if from_env else "")
    return ControllerSettings(source=source, from_environment=from_env, awx=awx, **values)


def refuse_run_overrides(run_vars, options=None):
    """TrustError when a run variable (or a task option) tries to set a trust setting."""
    for var, setting in RUN_OVERRIDES.items():
        if var in run_vars and run_vars.get(var) is not None:
            if setting is None:
                raise TrustError(f"run variable {var} is not accepted: there is no switch that turns the change controls "
                                 "off; remove it (tests use a test policy and signed test approvals)")
            raise TrustError(f"run variable {var} is not accepted: it would choose a trust setting of the controller; "
                             f"set {where_it_belongs(setting)}")
    for option in options or ():
        setting = {"ledger": "register_db"}.get(option, option)
        raise TrustError(f"task option {option} is not accepted: it is a trust setting of the controller; set "
                         f"{where_it_belongs(setting)}")


def real_user():
    """The login of the real uid of this process (never USER/LOGNAME, which the launcher sets)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def launcher_identity(settings, run_vars, environ=None):
    """(launcher, source). Under AWX (the controller's settings say this is an AWX execution
    environment, and AWX's job environment is present) the AWX user AWX injects; otherwise the
    real uid of the process. ``awx_user_name`` elsewhere is refused, not believed."""
    environ = os.environ if environ is None else environ
    awx_user = run_vars.get("awx_user_name") or run_vars.get("tower_user_name")
    if settings.awx:
        job_id = run_vars.get("awx_job_id") or run_vars.get("tower_job_id")
        env_job = environ.get("JOB_ID")
        if not awx_user or not job_id or not env_job:
            raise TrustError("this controller is an AWX execution environment but the job has no awx_user_name, "
                             "awx_job_id and JOB_ID in its environment: launch it from an AWX job template")
        if str(env_job) != str(job_id):
            raise TrustError(f"awx_job_id {job_id} does not match the job environment's JOB_ID {env_job}: refused")
        return str(awx_user), "awx"
    if awx_user:
        raise TrustError(f"run variable awx_user_name ({awx_user}) is not accepted on this controller: it is not an AWX "
                         "execution environment (controller settings `awx: false`), so the launcher is the real user "
                         f"running ansible-playbook ({real_user()}); remove awx_user_name")
    return real_user(), "uid"
