"""The database settings: the embedded PostgreSQL server unless DATABASE_URL names another PostgreSQL;
anything else (SQLite included) is refused at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.database import database_settings, database_url

REPO = Path(__file__).resolve().parents[2]


def _settings_in_a_new_process(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**environment, "DJANGO_SETTINGS_MODULE": "config.settings",
                               "WATCHPOST_VAR_DIR": str(tmp_path), **env})


def test_the_settings_pick_the_embedded_server_when_database_url_is_unset(tmp_path):
    loaded = _settings_in_a_new_process(tmp_path)

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "config.embedded_backend"
    assert not (tmp_path / "postgres").exists()  # loading the settings starts nothing


def test_the_settings_refuse_a_sqlite_url_with_the_reason(tmp_path):
    loaded = _settings_in_a_new_process(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/watchpost.sqlite3")

    assert loaded.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL is a sqlite:// URL, but Watchpost runs on PostgreSQL only" in loaded.stderr


def test_the_embedded_server_is_reached_on_a_unix_socket_under_the_var_directory(tmp_path):
    database = database_settings("", var_dir=tmp_path)

    assert database["ENGINE"] == "config.embedded_backend"
    assert (database["NAME"], database["USER"], database["PORT"]) == ("watchpost", "postgres", "5432")
    assert database["HOST"] == str(tmp_path / "postgres")  # a directory: psycopg takes it for a socket's
    assert database["EMBEDDED_SERVER"] == str(tmp_path / "postgres")


def test_a_var_directory_too_deep_for_a_unix_socket_gets_a_short_socket_directory_of_its_own(tmp_path):
    deep, other = tmp_path / ("d" * 100), tmp_path / ("e" * 100)

    host = database_settings("", var_dir=deep)["HOST"]

    assert len(os.fsencode(Path(host) / ".s.PGSQL.5432")) <= 107
    assert host == database_settings("", var_dir=deep)["HOST"]  # every process computes the same one
    assert host != database_settings("", var_dir=other)["HOST"]
    assert database_settings("", var_dir=deep)["EMBEDDED_SERVER"] == str(deep / "postgres")


@pytest.mark.parametrize("url", ["sqlite:///var/watchpost.sqlite3", "sqlite://:memory:", "mysql://u@db/watchpost"])
def test_a_url_of_another_database_is_refused(tmp_path, url):
    with pytest.raises(ImproperlyConfigured, match="Watchpost runs on PostgreSQL only"):
        database_settings(url, var_dir=tmp_path)


def test_a_postgres_url_is_used_as_it_says(tmp_path):
    database = database_settings("postgres://u:secret@db.example:5433/watchpost?sslmode=require", var_dir=tmp_path)

    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["USER"], database["PASSWORD"]) == ("db.example", 5433, "u",
                                                                                             "secret")
    assert database["OPTIONS"] == {"sslmode": "require"}
    assert (database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]) == (60, True)


def test_a_url_built_from_the_embedded_settings_names_the_same_socket_and_database(tmp_path):
    embedded = {**database_settings("", var_dir=tmp_path / "Var Dir"), "NAME": "test_watchpost"}

    parsed = database_settings(database_url(embedded), var_dir=tmp_path)

    # The socket directory keeps its case and spaces (as a URL's host it would be lower-cased).
    assert parsed["OPTIONS"] == {"host": str(tmp_path / "Var Dir" / "postgres")}
    assert (parsed["NAME"], parsed["USER"], parsed["PORT"]) == ("test_watchpost", "postgres", 5432)


def test_a_url_built_from_tcp_settings_keeps_credentials_and_options(tmp_path):
    database = {"NAME": "test_watchpost", "USER": "ci", "PASSWORD": "p@ss:/word", "HOST": "127.0.0.1", "PORT": "5432",
                "OPTIONS": {"sslmode": "prefer", "pool": {"min_size": 2}}}

    parsed = database_settings(database_url(database), var_dir=tmp_path)

    assert (parsed["NAME"], parsed["USER"], parsed["PASSWORD"]) == ("test_watchpost", "ci", "p@ss:/word")
    assert (parsed["HOST"], parsed["PORT"], parsed["OPTIONS"]) == ("127.0.0.1", 5432, {"sslmode": "prefer"})
