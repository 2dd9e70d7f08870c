"""The unit tests mirror the modules one to one (issue 16, Deliver 3).

Every module of the governance core, ``plugins/plugin_utils/<room>/<module>.py``, has its tests in
``tests/unit/plugins/plugin_utils/<room>/test_<module>.py`` (or, several files by aspect,
``test_<module>_<aspect>.py`` in the same folder); every action plugin ``plugins/action/<name>.py``
in ``tests/unit/plugins/action/test_<name>*.py``. The CLI's private helpers (``cli/_*.py``) are
tested through the commands that use them, so they count as covered by any test of the cli/ room.
"""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CORE = REPO / "plugins" / "plugin_utils"
TESTS = REPO / "tests" / "unit" / "plugins"


def core_modules():
    return sorted(str(p.relative_to(CORE)) for p in CORE.rglob("*.py")
                  if p.name != "__init__.py" and "calendar_data" not in p.parts and "templates" not in p.parts)


def action_plugins():
    return sorted(p.stem for p in (REPO / "plugins" / "action").glob("*.py") if p.name != "__init__.py")


def has_tests(folder, stem):
    return any(folder.glob(f"test_{stem}.py")) or any(folder.glob(f"test_{stem}_*.py"))


@pytest.mark.parametrize("module", core_modules())
def test_every_core_module_has_its_mirrored_test_file(module):
    path = Path(module)
    folder = TESTS / "plugin_utils" / path.parent
    if path.parent.name == "cli" and path.stem.startswith("_"):
        assert any(folder.glob("test_*.py")), f"{module}: no test of the cli room at all"
        return
    assert has_tests(folder, path.stem), (
        f"plugins/plugin_utils/{module} has no test file: write {folder.relative_to(REPO)}/test_{path.stem}.py "
        f"(or test_{path.stem}_<aspect>.py)")


@pytest.mark.parametrize("name", action_plugins())
def test_every_action_plugin_has_its_mirrored_test_file(name):
    folder = TESTS / "action"
    assert has_tests(folder, name), f"plugins/action/{name}.py has no test file: write tests/unit/plugins/action/test_{name}_action.py"


def test_the_rooms_are_found():
    """The two lists above are not empty by mistake (a moved folder would make every check vacuous)."""
    modules = core_modules()
    assert "base.py" in modules and "governance/gate.py" in modules and "cli/approve.py" in modules
    assert "approval_gate" in action_plugins()
