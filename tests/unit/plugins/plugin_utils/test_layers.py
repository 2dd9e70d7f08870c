"""The rooms of the core and what each may import (docs/architecture.md), checked on the source.

Layers, top to bottom: cli -> report -> trust, controller -> register -> governance -> schedule ->
base (with errors, input_files). A module may import its own room and any room below it, never one
above; the core never imports Ansible; no import cycle at module level; no core file over 500 lines.
"""
import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[4] / "plugins" / "plugin_utils"
PLUGINS = CORE.parent
NAME = "ansible_collections.prodgate.deploy.plugins.plugin_utils"

# The room of each module: a sub-package, or a top-level module's own name.
RANK = {"cli": 6, "report": 5, "trust": 4, "controller": 4, "collection_version": 4, "register": 3, "governance": 2,
        "schedule": 1, "base": 0, "errors": 0, "input_files": 0, "__init__": 0}


def _room(module):
    """'governance.policy' -> 'governance'; 'base' -> 'base'."""
    return module.split(".")[0]


def _modules():
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(CORE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1] or ["__init__"]
        yield ".".join(parts), path


def _imports(module, path, top_level_only=False):
    """Core modules (dotted, relative to the core) that ``module`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith(NAME):
                target = node.module[len(NAME):].lstrip(".").split(".") if node.module != NAME else []
            else:
                continue
            for alias in node.names:
                child = target + [alias.name]
                as_module = CORE.joinpath(*child).with_suffix(".py").exists() or CORE.joinpath(*child).is_dir()
                found.append(".".join(child if as_module else target) or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(NAME + "."):
                    found.append(alias.name[len(NAME) + 1:])
    return found


MODULES = dict(_modules())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_room_imports_only_its_own_and_the_rooms_below(module):
    mine = RANK[_room(module)]
    above = [t for t in _imports(module, MODULES[module]) if RANK[_room(t)] > mine]
    assert not above, f"{module} imports {above}, a room above its own ({_room(module)}): move the rule down or the caller up"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_core_never_imports_ansible(module):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level]
    bad = [n for n in names if n == "ansible" or n.startswith("ansible.")]
    assert not bad, f"{module} imports {bad}: the core is pure Python; the adapter in plugins/ talks to Ansible"


def test_no_import_cycle_at_module_level():
    graph = {m: {t for t in _imports(m, p, top_level_only=True) if t in MODULES and t != m} for m, p in MODULES.items()}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_core_has_one_import_name():
    """Plugins and the command import the core by the collection's name; nothing imports a `prodgate` package."""
    offenders = []
    for path in list(PLUGINS.rglob("*.py")) + list((PLUGINS.parent / "tests").rglob("*.py")) + list((PLUGINS.parent / "bench").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            offenders += [f"{path}: {m}" for m in mods if m == "prodgate" or m.startswith("prodgate.")]
    assert not offenders, offenders


def test_no_file_in_plugins_is_over_500_lines():
    long = {str(p.relative_to(PLUGINS.parent)): n for p in PLUGINS.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, f"split these by idea (docs/architecture.md): {long}"
