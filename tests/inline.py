"""Run a piece of the pipeline and everything it causes in the test's process (no broker)."""

from collections.abc import Callable
from typing import Any

from scans.pipeline import dispatch


def run_inline(function: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Call ``function``, drain what it enqueued (and what that enqueues), return its result."""
    with dispatch.inline():
        result = function(**kwargs)
        dispatch.drain()
    return result
