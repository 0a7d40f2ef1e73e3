"""Checks on every executed chapter cell (nbval): pages that a reader can scan.

A cell of a built chapter may print at most :data:`MAX_LINES` lines of text
(progress, echoes, logs): results belong in tables and figures, and numbers in
the prose. The check runs on the cells' outputs of the test run (fast mode).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

MAX_LINES = 15


def printed_lines(outputs: list[dict[str, Any]] | None) -> int:
    """Non-blank printed lines of a cell (stream outputs; a carriage return too)."""
    lines = 0
    for out in outputs or []:
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            lines += sum(1 for line in re.split(r"[\r\n]", text) if line.strip())
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Fail a passing notebook cell whose printed output is longer than allowed."""
    outcome = yield
    report = outcome.get_result()
    outputs = getattr(item, "test_outputs", None)
    if call.when != "call" or report.outcome != "passed" or outputs is None:
        return
    lines = printed_lines(outputs)
    if lines > MAX_LINES:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.name}: the cell prints {lines} lines (at most {MAX_LINES}): "
            "show results as a table or figure, keep progress out of the page"
        )
