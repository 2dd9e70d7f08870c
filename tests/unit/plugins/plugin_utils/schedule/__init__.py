"""Unit tests of plugins/plugin_utils/schedule (see ../__init__.py)."""
