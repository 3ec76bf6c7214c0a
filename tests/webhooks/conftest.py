import random

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    """A real receiver on its own loopback address (127.0.95.x), stopped after the test."""
    running = Receiver(host=f"127.0.95.{random.randint(2, 250)}").start()
    yield running
    running.stop()
