"""Unit tests of plugins/plugin_utils/register (see ../__init__.py)."""
