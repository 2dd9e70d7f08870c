"""Unit tests of plugins/plugin_utils/report (see ../__init__.py)."""
