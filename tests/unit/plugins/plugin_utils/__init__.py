"""Unit tests of plugins/plugin_utils: the folders mirror the core's rooms, one test_<module>.py per module.

A package (as is each room), so that pytest's default import mode imports each test module by its
dotted path (plugin_utils.schedule.test_calendar, plugin_utils.cli.test_calendar): two rooms may
have test modules of the same name."""
