"""Unit tests of plugins/plugin_utils/governance (see ../__init__.py)."""
