"""The API's token fixtures (tests/api/conftest.py), for the findings views' endpoints tested here."""

from tests.api.conftest import _no_throttle, api, session_api, tokens  # noqa: F401
