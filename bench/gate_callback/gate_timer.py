# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bench-only callback: wall time of each task (start to first result), written as JSON lines."""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: gate_timer
type: aggregate
short_description: task wall times for bench/gate_bench.py
description: Writes one JSON line per task (name, seconds) to the file in GATE_TIMER_OUT.
requirements: []
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "gate_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._start = {}
        self._out = os.environ["GATE_TIMER_OUT"]

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start[task._uuid] = (task.get_name(), time.perf_counter())

    def _done(self, result):
        name, start = self._start.pop(result._task._uuid, (None, None))
        if name is not None:
            with open(self._out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"task": name, "seconds": time.perf_counter() - start, "failed": result.is_failed(),
                                         "decision_ms": result._result.get("decision_ms")}) + "\n")

    v2_runner_on_ok = _done
    v2_runner_on_failed = _done
