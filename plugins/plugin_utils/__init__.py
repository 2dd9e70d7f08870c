"""prodgate governance core: pure Python, no Ansible imports.

Importable as ``prodgate`` (the CLI, tests) and as
``ansible_collections.prodgate.deploy.plugins.plugin_utils`` (the collection's plugins);
modules in here therefore import each other relatively only.
"""
__version__ = "0.1.0"
