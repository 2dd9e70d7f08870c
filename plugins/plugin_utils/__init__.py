"""prodgate governance core: pure Python, no Ansible imports.

One import name, the collection's: ``ansible_collections.prodgate.deploy.plugins.plugin_utils``.
Ansible's collection loader finds it for the plugins; the ``prodgate`` Python package (the
command) installs the same tree at the same name, so a class or a rule is never loaded twice under
two names. Inside the core, modules import each other relatively. The rooms and what each may
import are in docs/architecture.md (and tests/unit/plugins/plugin_utils/test_layers.py keeps them).
"""
__version__ = "0.1.0"
