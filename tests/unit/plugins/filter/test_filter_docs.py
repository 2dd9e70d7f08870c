"""Every filter loads by its FQCN, is named after its file, and documents what ansible-doc shows."""
import os

import pytest

from ansible.parsing.plugin_docs import read_docstring
from ansible.plugins.loader import filter_loader

HERE = os.path.dirname(os.path.abspath(__file__))
FILTERS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(HERE)))), "plugins", "filter")
NAMES = sorted(name[:-3] for name in os.listdir(FILTERS) if name.endswith(".py") and not name.startswith("_"))


def _texts(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", NAMES)
def test_filter_loads_by_fqcn_and_is_documented(name):
    plugin = filter_loader.get(f"prodgate.deploy.{name}")
    assert plugin is not None and callable(plugin.j2_function)
    docs = read_docstring(os.path.join(FILTERS, f"{name}.py"))
    doc = docs["doc"]
    assert doc["name"] == name
    assert all(isinstance(text, str) for text in _texts(doc["description"])), doc["description"]
    assert "_input" in doc["options"]
    for option, spec in doc["options"].items():
        assert all(isinstance(text, str) for text in _texts(spec["description"])), option
    assert set(doc.get("positional", "").replace(" ", "").split(",")) - {""} <= set(doc["options"])
    assert "_value" in docs["returndocs"] and docs["plainexamples"].strip()
