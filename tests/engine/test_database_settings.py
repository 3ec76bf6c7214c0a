"""Any SQLite database gets the embedded default's settings: WAL, a busy timeout, IMMEDIATE transactions."""

from __future__ import annotations

from django.db.utils import ConnectionHandler

from config.database import SQLITE_OPTIONS, database_settings


def test_a_sqlite_url_gets_the_same_options_as_the_embedded_default(tmp_path):
    embedded = database_settings("", default_path=tmp_path / "watchpost.sqlite3")
    from_url = database_settings(f"sqlite:///{tmp_path}/other.sqlite3", default_path=tmp_path / "unused")
    assert from_url["ENGINE"] == embedded["ENGINE"] == "django.db.backends.sqlite3"
    assert from_url["NAME"] == f"{tmp_path}/other.sqlite3"
    assert from_url["OPTIONS"] == embedded["OPTIONS"] == SQLITE_OPTIONS
    assert from_url["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_a_database_opened_from_a_sqlite_url_is_in_wal_mode_with_the_busy_timeout(tmp_path, django_db_blocker):
    databases = ConnectionHandler({"default": database_settings(f"sqlite:///{tmp_path}/db.sqlite3",
                                                                default_path=tmp_path / "unused")})
    connection = databases["default"]
    with django_db_blocker.unblock():  # a database of its own in tmp_path, not the test database
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode")
                assert cursor.fetchone()[0] == "wal"
                cursor.execute("PRAGMA busy_timeout")
                assert cursor.fetchone()[0] == 20000
        finally:
            connection.close()


def test_a_url_keeps_its_own_sqlite_options_and_postgres_gets_none_of_these(tmp_path):
    tuned = database_settings(f"sqlite:///{tmp_path}/db.sqlite3?timeout=60", default_path=tmp_path)
    assert tuned["OPTIONS"]["timeout"] == 60 and tuned["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    postgres = database_settings("postgres://u@127.0.0.1:5432/w", default_path=tmp_path)
    assert "transaction_mode" not in (postgres.get("OPTIONS") or {})
