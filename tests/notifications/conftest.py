import random

import pytest

from tests.notifications.receiver import ChatReceiver


@pytest.fixture
def chat():
    """A Slack- or Teams-like receiver on its own loopback address (127.0.96.x), stopped after the test."""
    running = ChatReceiver(host=f"127.0.96.{random.randint(2, 250)}").start()
    yield running
    running.stop()


@pytest.fixture
def settings_fast(settings):
    settings.WATCHPOST_WEBHOOK_MAX_ATTEMPTS = 3
    settings.WATCHPOST_WEBHOOK_FAILURE_THRESHOLD = 2
    settings.WATCHPOST_WEBHOOK_TIMEOUT_SECONDS = 2
    settings.WATCHPOST_BASE_URL = "https://watchpost.lab.internal"
    return settings
