"""What every app's console views do alike: tell a person how their action went, show a new secret once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import render


@dataclass
class Outcome:
    success: str


@contextmanager
def outcome_told(request, *, success: str = "",
                 refusals: tuple[type[Exception], ...] = (ValidationError,)) -> Iterator[Outcome]:
    """Tells the person how the service called in the block went: its refusal becomes the page's error,
    else the ``success`` words (the block sets them when they depend on its result: ``told.success = ...``).

    ``refusals`` are the exceptions by which the service says no (Django's ``ValidationError`` unless
    the app has its own); any other exception goes on. The view redirects after the block either way.
    """
    outcome = Outcome(success)
    try:
        yield outcome
    except refusals as error:
        # A ValidationError may hold several messages: all of them, as one line.
        messages.error(request, " ".join(error.messages) if isinstance(error, ValidationError) else str(error))
    else:
        messages.success(request, outcome.success)


def render_secret(request, template: str, context: dict):
    """The page that shows a new secret (an API token, a webhook's signing secret): rendered, not redirected to,
    so the secret lives only in this response, never in a URL or the session; and no cache keeps it."""
    response = render(request, template, context, status=201)
    response["Cache-Control"] = "no-store"
    return response
