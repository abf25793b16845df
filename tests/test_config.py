"""Configuration the Flask way: defaults, instance file, HELPDESK_* environment."""

from __future__ import annotations

import pytest

from helpdesk import create_app
from helpdesk.config import ConfigError, parse_rate
from helpdesk.core.mail.readahead import processes_wanted


def test_environment_overrides_with_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("HELPDESK_MAIL_SERVER", "smtp.example.com")
    monkeypatch.setenv("HELPDESK_MAX_BODY_LENGTH", "1234")
    monkeypatch.setenv("HELPDESK_SECRET_KEY", "from-env")
    monkeypatch.setenv("HELPDESK_INSTANCE_PATH", str(tmp_path))
    app = create_app()
    assert app.config["MAIL_SERVER"] == "smtp.example.com"
    assert app.config["MAX_BODY_LENGTH"] == 1234
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'helpdesk.sqlite3'}"


def test_instance_file_is_read_before_the_environment(monkeypatch, tmp_path):
    (tmp_path / "helpdesk.cfg").write_text("PAGE_SIZE = 40\nHELPDESK_NAME = 'Acme'\n")
    monkeypatch.setenv("HELPDESK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("HELPDESK_SECRET_KEY", "x")
    monkeypatch.setenv("HELPDESK_HELPDESK_NAME", '"Acme Support"')
    app = create_app()
    assert app.config["PAGE_SIZE"] == 40
    assert app.config["HELPDESK_NAME"] == "Acme Support"


def test_secret_key_is_required_outside_development(monkeypatch, tmp_path):
    monkeypatch.delenv("HELPDESK_SECRET_KEY", raising=False)
    monkeypatch.delenv("HELPDESK_ENV", raising=False)
    monkeypatch.setenv("HELPDESK_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="HELPDESK_SECRET_KEY"):
        create_app()
    monkeypatch.setenv("HELPDESK_ENV", "development")
    assert create_app().config["SECRET_KEY"]


def test_postgres_urls_use_psycopg3(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPDESK_INSTANCE_PATH", str(tmp_path))
    app = create_app({"SECRET_KEY": "x", "DATABASE_URL": "postgres://u:p@db/helpdesk"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db/helpdesk"


@pytest.mark.parametrize("value", ["10", "ten/60", "0/60", "5/0", ""])
def test_bad_rate_limits_are_config_errors(value):
    with pytest.raises(ConfigError):
        parse_rate(value)
    assert parse_rate("10/60") == (10, 60)


@pytest.mark.parametrize("value", ["two", -1, 1.5, True])
def test_bad_parse_helper_counts_are_config_errors(value):
    with pytest.raises(ConfigError, match="MAIL_FETCH_PARSE_PROCESSES"):
        processes_wanted({"MAIL_FETCH_PARSE_PROCESSES": value})


def test_parse_helpers_default_to_one_when_there_is_a_cpu_to_spare(monkeypatch):
    assert processes_wanted({"MAIL_FETCH_PARSE_PROCESSES": 0}) == 0
    assert processes_wanted({"MAIL_FETCH_PARSE_PROCESSES": 3}) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert processes_wanted({"MAIL_FETCH_PARSE_PROCESSES": None}) == 0
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert processes_wanted({"MAIL_FETCH_PARSE_PROCESSES": None}) == 1
