"""AWX configuration as code (awx/, issue 12 Deliver 5), validated without an AWX server: every object
of awx/objects.yml, as awx/apply.yml passes it, against the argument spec of the awx.awx module that
applies it (read from the installed awx.awx collection); then what the spec cannot say: the credential
types inject exactly the controller trust settings, launch-time prompts are closed, the survey asks
only for the change id and the evidence location, and every reference resolves."""
import importlib
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.prodgate.deploy.plugins.plugin_utils.controller import SETTINGS

REPO = Path(__file__).resolve().parents[2]
AWX = REPO / "awx"
# What an AWX credential injects: every controller trust setting's environment variable, as
# plugins/plugin_utils/controller.py reads them with settings_from_environment: true.
TRUST_ENV = {env for _keys, env in SETTINGS.values()}
PLAYBOOKS = {"go_live", "upgrade", "rollback", "switchover", "failover", "prepare_environment", "hygiene_audit"}
SURVEY_VARIABLES = ["prodgate_change_id", "prodgate_evidence"]
ITEM = re.compile(r"^\{\{ item\.(\w+)( \| default\(omit\))? \}\}$")


class Unsafe(str):
    """A string awx/objects.yml marks !unsafe: Ansible leaves it alone, AWX templates it."""


class ObjectsLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    pass


ObjectsLoader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


class Captured(Exception):
    def __init__(self, argument_spec, options):
        super().__init__("captured")
        self.argument_spec, self.options = argument_spec, options


def module_spec(fqcn, monkeypatch):
    """(full argument spec, validator options) of an awx.awx module, as ControllerAPIModule builds them."""
    namespace, collection, name = fqcn.split(".")
    module = importlib.import_module(f"ansible_collections.{namespace}.{collection}.plugins.modules.{name}")
    api = importlib.import_module(f"ansible_collections.{namespace}.{collection}.plugins.module_utils.controller_api")

    def capture(argument_spec=None, **options):
        raise Captured(argument_spec, options)

    monkeypatch.setattr(module, "ControllerAPIModule", capture)
    with pytest.raises(Captured) as caught:
        module.main()
    spec = dict(api.ControllerModule.AUTH_ARGSPEC)
    spec.update(caught.value.argument_spec)
    options = {k: v for k, v in caught.value.options.items()
               if k in ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")}
    return spec, options


@pytest.fixture(scope="module")
def objects():
    return yaml.load((AWX / "objects.yml").read_text(encoding="utf-8"), Loader=ObjectsLoader)  # noqa: S506 (SafeLoader subclass)


@pytest.fixture(scope="module")
def tasks():
    play = yaml.safe_load((AWX / "apply.yml").read_text(encoding="utf-8"))
    assert len(play) == 1
    found = []
    for task in play[0]["tasks"]:
        fqcn = next(k for k in task if k.startswith("awx.awx."))
        listing = re.fullmatch(r"\{\{ (controller_\w+) \}\}", task["loop"]).group(1)
        found.append((fqcn, listing, task[fqcn], task))
    return found


def render(args, item):
    """The parameters apply.yml passes the module for one object: `{{ item.x }}` and `{{ item.x |
    default(omit) }}` resolved, literals kept."""
    params = {}
    for option, value in args.items():
        match = ITEM.match(value) if isinstance(value, str) else None
        if match is None:
            params[option] = value
        elif match.group(1) in item:
            params[option] = item[match.group(1)]
        else:
            assert match.group(2), f"{item.get('name', item)} has no {match.group(1)}, which apply.yml requires"
    return params


def applied(objects, tasks):
    for fqcn, listing, args, _task in tasks:
        for item in objects[listing]:
            yield fqcn, listing, item, render(args, item)


def test_every_object_passes_its_module_argument_spec(objects, tasks, monkeypatch):
    assert {listing for _f, listing, _a, _t in tasks} == set(objects), "a list of awx/objects.yml that apply.yml never applies"
    specs = {}
    checked = 0
    for fqcn, listing, item, params in applied(objects, tasks):
        if fqcn not in specs:
            specs[fqcn] = module_spec(fqcn, monkeypatch)
        spec, options = specs[fqcn]
        used = {ITEM.match(v).group(1) for v in next(a for f, li, a, _t in tasks if li == listing).values()
                if isinstance(v, str) and ITEM.match(v)}
        assert set(item) <= used, f"{listing}: {sorted(set(item) - used)} of {item.get('name')} would be dropped by apply.yml"
        result = ArgumentSpecValidator(spec, **options).validate(params)
        assert not result.error_messages, f"{fqcn} {item.get('name') or item.get('identifier')}: {result.error_messages}"
        checked += 1
    assert checked == sum(len(v) for v in objects.values()) >= 20


def test_a_bad_object_is_caught(tasks, monkeypatch):
    """The validation above can fail: an unknown option, a wrong type and a bad choice are refused."""
    spec, options = module_spec("awx.awx.job_template", monkeypatch)
    args = next(a for f, _li, a, _t in tasks if f == "awx.awx.job_template")
    base = {"name": "x", "organization": "o", "project": "p", "playbook": "playbooks/go_live.yml", "inventory": "i",
            "execution_environment": "e", "credentials": ["c"], "survey_spec": {}}
    for bad, message in (({"timeout": "soon"}, "timeout"), ({"job_type": "deploy"}, "job_type")):
        errors = ArgumentSpecValidator(spec, **options).validate(render(args, dict(base, **bad))).error_messages
        assert any(message in e for e in errors), errors
    errors = ArgumentSpecValidator(spec, **options).validate(dict(render(args, base), ask_variables=True, extra="x")).error_messages
    assert any("extra" in e for e in errors), errors


def test_credential_types_inject_exactly_the_trust_settings(objects):
    injected, names = set(), set()
    for ctype in objects["controller_credential_types"]:
        fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
        files = {key.split(".", 1)[1] for key in ctype["injectors"].get("file", {})}
        assert set(ctype["inputs"]["required"]) <= set(fields)
        for kind in ("file", "env"):
            for key, template in ctype["injectors"].get(kind, {}).items():
                assert isinstance(template, Unsafe), f"{ctype['name']} {key}: mark it !unsafe or Ansible evaluates it while applying"
                for ref in re.findall(r"\{\{\s*([\w.]+)\s*\}\}", template):
                    if ref.startswith("tower.filename."):
                        assert ref.split(".", 2)[2] in files, f"{ctype['name']} {key}: no file {ref}"
                    else:
                        assert ref in fields, f"{ctype['name']} {key}: {ref} is not an input of the type"
        assert not [key for key in ctype["injectors"].get("env", {}) if key in injected], "two types inject the same variable"
        injected |= set(ctype["injectors"].get("env", {}))
        names.add(ctype["name"])
    assert injected == TRUST_ENV
    assert {"PRODGATE_POLICY", "PRODGATE_POLICY_ROOT", "PRODGATE_REGISTER_DB", "PRODGATE_REGISTER_SIGNING_KEY",
            "PRODGATE_REGISTER_ANCHOR", "PRODGATE_REGISTER_JOURNAL_DIR", "PRODGATE_TEST_CLOCK_ENVIRONMENTS"} <= TRUST_ENV
    secrets = {f["id"] for t in objects["controller_credential_types"] for f in t["inputs"]["fields"] if f.get("secret")}
    assert {"register_db", "register_signing_key"} <= secrets
    # Every job template carries one credential of each type, and the credentials' inputs are the types' fields.
    credentials = {c["name"]: c for c in objects["controller_credentials"]}
    for credential in credentials.values():
        if credential["credential_type"] in names:
            ctype = next(t for t in objects["controller_credential_types"] if t["name"] == credential["credential_type"])
            assert set(credential["inputs"]) <= {f["id"] for f in ctype["inputs"]["fields"]}
            assert set(ctype["inputs"]["required"]) <= set(credential["inputs"])
    for template in objects["controller_templates"]:
        types = [credentials[c]["credential_type"] for c in template["credentials"]]
        assert sorted(types) == sorted(names | {"Machine"}), template["name"]


def test_job_templates_ask_only_for_the_change_and_its_evidence(objects, tasks, monkeypatch):
    playbooks = set()
    for fqcn, listing, item, params in applied(objects, tasks):
        if fqcn not in ("awx.awx.job_template", "awx.awx.workflow_job_template"):
            continue
        spec, _options = module_spec(fqcn, monkeypatch)
        asks = {option for option in spec if option.startswith("ask_") and option.endswith("_on_launch")}
        assert "ask_variables_on_launch" in asks
        assert {option: params.get(option) for option in asks} == dict.fromkeys(asks, False), item["name"]
        assert params["survey_enabled"] is True
        questions = params["survey_spec"]["spec"]
        assert [q["variable"] for q in questions] == SURVEY_VARIABLES, item["name"]
        assert all(q["required"] and q["type"] == "text" for q in questions)
        assert "extra_vars" not in params, "variables belong to the credentials and the survey, nowhere else"
        if listing == "controller_templates":
            playbooks.add(Path(params["playbook"]).stem)
            assert (REPO / params["playbook"]).is_file()
    assert playbooks == PLAYBOOKS


def test_every_reference_resolves_and_the_workflow_is_trial_run_then_go_live(objects):
    def names(listing):
        return {o["name"] for o in objects[listing]}
    orgs, projects = names("controller_organizations"), names("controller_projects")
    for listing, items in objects.items():
        for item in items:
            if "organization" in item:
                assert item["organization"] in orgs, item
    for template in objects["controller_templates"]:
        assert template["project"] in projects
        assert template["inventory"] in names("controller_inventories")
        assert template["execution_environment"] in names("controller_execution_environments")
        assert set(template["credentials"]) <= names("controller_credentials")
    for source in objects["controller_inventory_sources"]:
        assert source["source_project"] in projects and (REPO / source["source_path"]).is_file()
    assert {p["default_environment"] for p in objects["controller_projects"]} <= names("controller_execution_environments")
    assert all(c["credential_type"] in names("controller_credential_types") | {"Machine"} for c in objects["controller_credentials"])

    nodes = objects["controller_workflow_nodes"]
    seen = set()
    for node in nodes:  # a node's success nodes must exist when it is applied: leaves first
        assert set(node.get("success_nodes", [])) <= seen, f"{node['identifier']} is applied before its success nodes"
        assert node["workflow_job_template"] in names("controller_workflows")
        seen.add(node["identifier"])
    by_id = {n["identifier"]: n for n in nodes}
    roots = set(by_id) - {s for n in nodes for s in n.get("success_nodes", [])}
    path, node = [], by_id[roots.pop()]
    while True:
        path.append(node.get("unified_job_template") or "approval")
        if not node.get("success_nodes"):
            break
        node = by_id[node["success_nodes"][0]]
    assert path == ["prodgate go-live", "approval", "prodgate go-live"]
    assert next(t for t in objects["controller_templates"] if t["name"] == "prodgate go-live")["playbook"] == "playbooks/go_live.yml"


def test_the_apply_playbook_is_valid_ansible():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "--syntax-check", "-i", "localhost,", str(AWX / "apply.yml")],
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
