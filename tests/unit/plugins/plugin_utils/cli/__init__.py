"""Unit tests of plugins/plugin_utils/cli (see ../__init__.py)."""
