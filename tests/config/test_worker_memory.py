"""A worker's pool process keeps what it inherited out of the garbage collector's walks."""

from __future__ import annotations

import gc

from config.celery import freeze_inherited_objects


def test_a_new_pool_process_freezes_the_objects_it_inherited():
    try:
        freeze_inherited_objects()

        assert gc.get_freeze_count() > 10_000  # Django, Celery and the apps, imported by the parent
    finally:
        gc.unfreeze()
