"""The apps' layers: what import-linter cannot see (imports inside functions), and the hooks that
let a lower layer reach a higher one without importing it. The layers themselves are the
contract in .importlinter, checked by ``lint-imports`` at the start of ``make test``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "orgs", "interventions", "nodes", "scans", "reports")


def _imports_inside_functions(tree: ast.AST):
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    yield node, [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    yield node, [node.module]


def test_no_import_inside_a_function_reaches_another_app():
    # An import inside a function is how a circle between apps hides; the layers allow none.
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node, names in _imports_inside_functions(ast.parse(path.read_text(encoding="utf-8"))):
                crossing = [name for name in names if name.split(".")[0] in APPS and name.split(".")[0] != app]
                if crossing:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {', '.join(crossing)}")
    assert not found, "imports inside functions reaching another app:\n" + "\n".join(found)


def test_webhooks_subscribe_to_the_events_below_and_retry_their_interventions():
    from interventions.models import Intervention
    from interventions.services import RETRY_HANDLERS
    from orgs import events
    from reports.webhooks import services as webhooks

    assert webhooks.session_finished in events._subscribers[events.SESSION_FINISHED]
    assert webhooks.intervention_opened in events._subscribers[events.INTERVENTION_OPENED]
    assert RETRY_HANDLERS[Intervention.Kind.WEBHOOK_FAILING] is webhooks.webhook_endpoint_resume_for_intervention


def test_a_subscriber_is_told_once_with_the_events_keyword():
    from orgs import events

    heard = []

    def handler(*, session):
        heard.append(session)

    kind = "test.heard"  # a kind of this test's own: the real ones have the webhooks subscribed
    try:
        events.event_subscribe(kind, handler)
        events.event_subscribe(kind, handler)  # AppConfig.ready() may run twice
        events.event_publish(kind, session="s")
        events.event_publish("test.unheard", session="t")  # nobody listens: nothing happens
    finally:
        events._subscribers.pop(kind, None)
    assert heard == ["s"]
