"""``helpdesk mail ...`` as the MTA and the admin run it: ``ingest`` from a Postfix-like pipe
(minimal environment, another working directory, exit codes), ``fetch --maildir``,
``fetch`` over IMAP from a real Dovecot, and ``quarantine``."""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpdesk.core.models import MailQuarantine, Message, Ticket
from helpdesk.extensions import db

SAMPLES = Path(__file__).parent / "mail_samples"
HELPDESK = Path(sys.executable).parent / "helpdesk"
DSN_LIKE = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")


@pytest.fixture
def mail_config(app_config, tmp_path):
    app_config.update(
        MAIL_DEFAULT_SENDER="helpdesk@example.com",
        MAIL_QUARANTINE_DIR=str(tmp_path / "quarantine"),
    )
    return app_config


@pytest.fixture
def mail_app_ready(mail_config, app):
    return app


def postfix_env(app_config, tmp_path, **extra: str) -> dict[str, str]:
    """What a Postfix pipe gives the command (PATH and LANG) plus our HELPDESK_* settings."""
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C",
        "HELPDESK_DATABASE_URL": app_config["DATABASE_URL"],
        "HELPDESK_SECRET_KEY": app_config["SECRET_KEY"],
        "HELPDESK_INSTANCE_PATH": str(tmp_path / "instance"),
        "HELPDESK_ATTACHMENTS_DIR": app_config["ATTACHMENTS_DIR"],
        "HELPDESK_MAIL_QUARANTINE_DIR": app_config["MAIL_QUARANTINE_DIR"],
        "HELPDESK_MAIL_DEFAULT_SENDER": "helpdesk@example.com",
    }
    env.update(extra)
    return env


def run_ingest(raw: bytes, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HELPDESK), "mail", "ingest"],
        input=raw,
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
    )


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def test_ingest_as_postfix_runs_it(mail_app_ready, mail_config, tmp_path):
    queue_dir = tmp_path / "spool"
    queue_dir.mkdir()
    env = postfix_env(mail_config, tmp_path)
    raw = (
        b"From maria@gmail.example  Tue Mar 12 09:14:02 2024\n"
        + (SAMPLES / "gmail_alternative_utf8.eml").read_bytes()
    )
    first = run_ingest(raw, env, queue_dir)
    assert first.returncode == 0, first.stderr
    assert b"new ticket #" in first.stdout
    again = run_ingest(raw, env, queue_dir)
    assert again.returncode == 0 and b"already received" in again.stdout
    assert (count(Ticket), count(Message)) == (1, 1)
    bounce = run_ingest((SAMPLES / "dsn_bounce_postfix.eml").read_bytes(), env, queue_dir)
    assert bounce.returncode == 0  # a machine's mail about no ticket: dropped on purpose
    for result in (first, again, bounce):
        output = (result.stdout + result.stderr).decode()
        assert not DSN_LIKE.search(output) and "Traceback" not in output


def test_ingest_oversized_mail_is_quarantined_with_exit_0(mail_app_ready, mail_config, tmp_path):
    env = postfix_env(mail_config, tmp_path, HELPDESK_MAIL_MAX_MESSAGE_BYTES="1000")
    raw = (SAMPLES / "outlook_winmail_dat.eml").read_bytes()
    result = run_ingest(raw, env, tmp_path)
    assert result.returncode == 0 and b"quarantine" in result.stdout
    (item,) = db.session.scalars(select(MailQuarantine)).all()
    assert item.reason == "too_large"
    assert (Path(mail_config["MAIL_QUARANTINE_DIR"]) / item.storage_key).read_bytes() == raw


def test_ingest_with_database_down_asks_mta_to_retry(mail_app_ready, mail_config, tmp_path):
    env = postfix_env(
        mail_config,
        tmp_path,
        HELPDESK_DATABASE_URL="postgresql://helpdesk@127.0.0.1:9/none?connect_timeout=2",
    )
    result = run_ingest((SAMPLES / "greek_iso8859_7_qp.eml").read_bytes(), env, tmp_path)
    assert result.returncode == 75
    output = (result.stdout + result.stderr).decode()
    assert "temporary failure" in output
    assert "Traceback" not in output and not DSN_LIKE.search(output)


def test_fetch_maildir_and_quarantine_cli(mail_app_ready, runner, tmp_path):
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    names = [
        "gmail_alternative_utf8.eml",
        "thunderbird_hebrew_iso8859_8_base64.eml",
        "gmail_alternative_utf8.eml",  # the same mail twice
        "out_of_office_exchange.eml",  # automated, about no ticket
        "no_from_no_message_id.eml",  # quarantined
    ]
    for name in names:
        box.add((SAMPLES / name).read_bytes())
    result = runner.invoke(args=["mail", "fetch", "--maildir", str(tmp_path / "Maildir")])
    assert result.exit_code == 0, result.output
    assert "Done: 2 new tickets, 0 replies" in result.output
    assert "1 duplicates, 1 automated; quarantined: 1." in result.output
    assert "no_sender" in result.output
    assert len(mailbox.Maildir(str(tmp_path / "Maildir"), create=False)) == 0
    listing = runner.invoke(args=["mail", "quarantine"])
    assert "no_sender" in listing.output and "who am I" in listing.output
    item_id = db.session.scalar(select(MailQuarantine.id))
    retry = runner.invoke(args=["mail", "quarantine", "--retry", str(item_id)])
    assert f"#{item_id}: kept in quarantine" in retry.output
    missing = runner.invoke(args=["mail", "quarantine", "--retry", "999999"])
    assert missing.exit_code != 0 and "no mail #999999" in missing.output


def test_fetch_maildir_keeps_mail_when_the_database_fails(
    mail_app_ready, runner, tmp_path, monkeypatch
):
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    box.add((SAMPLES / "greek_iso8859_7_qp.eml").read_bytes())
    box.add((SAMPLES / "gmail_alternative_utf8.eml").read_bytes())
    from helpdesk.core import services

    real_values = services.opening_values_many
    calls = []

    def failing_second(requests, **fields):
        calls.extend(request["customer"] for request in requests)
        if len(calls) >= 2:
            raise db.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real_values(requests, **fields)

    monkeypatch.setattr(services, "opening_values_many", failing_second)
    result = runner.invoke(args=["mail", "fetch", "--maildir", str(tmp_path / "Maildir")])
    assert result.exit_code != 0 and "remaining mail stays in the mailbox" in result.output
    # The first mail's change was in the same (rolled back) batch: both stay, neither is kept.
    assert len(mailbox.Maildir(str(tmp_path / "Maildir"), create=False)) == 2
    assert count(Ticket) == 0 and count(Message) == 0
    monkeypatch.setattr(services, "opening_values_many", real_values)
    again = runner.invoke(args=["mail", "fetch", "--maildir", str(tmp_path / "Maildir")])
    assert again.exit_code == 0 and "Done: 2 new tickets" in again.output, again.output
    assert len(mailbox.Maildir(str(tmp_path / "Maildir"), create=False)) == 0


# --- IMAP against a real Dovecot --------------------------------------------------------------

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dovecot(tmp_path):
    """A Dovecot IMAP server on a free 127.0.0.1 port, TLS with a self-signed certificate,
    one passwd-file user, mail in a Maildir under ``tmp_path``."""
    if not os.path.exists(DOVECOT):
        pytest.skip("IMAP tests skipped: dovecot-imapd is not installed (make test installs it)")
    # Dovecot's unprivileged login processes must reach the sockets in its base_dir: it lives
    # outside pytest's private (0700) temp tree.
    base = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
    base.chmod(0o755)
    (base / "run").mkdir(parents=True)
    (base / "mail").mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(base / "key.pem"), "-out", str(base / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:  # Dovecot refuses root as a mail user: the mail belongs to its own user
        import pwd

        uid, gid = pwd.getpwnam("dovecot")[2:4]
        os.chown(base / "mail", uid, gid)
    (base / "passwd").write_text(f"helpdesk:{{PLAIN}}imap-secret:{uid}:{gid}::{base}/home::\n")
    port = _free_port()
    # As root, Dovecot's own users (from the package) run the login and internal processes.
    login_user, internal_user = ("dovenull", "dovecot") if os.getuid() == 0 else (_me(), _me())
    (base / "dovecot.conf").write_text(
        f"""base_dir = {base}/run
state_dir = {base}/run
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
first_valid_uid = 0
mail_location = maildir:{base}/mail/%u
default_internal_user = {internal_user}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = {base}/passwd
}}
userdb {{
  driver = passwd-file
  args = {base}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
    )
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(base / "dovecot.conf")])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.terminate()
        log = (base / "dovecot.log").read_text() if (base / "dovecot.log").exists() else ""
        pytest.fail(f"dovecot did not start: {log[-2000:]}")
    yield {"port": port, "ca": str(base / "cert.pem")}
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(base, ignore_errors=True)


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def imap_app(app_config, tmp_path, dovecot):
    app_config.update(
        MAIL_DEFAULT_SENDER="helpdesk@example.com",
        MAIL_QUARANTINE_DIR=str(tmp_path / "quarantine"),
        MAIL_IMAP_HOST="127.0.0.1",
        MAIL_IMAP_PORT=dovecot["port"],
        MAIL_IMAP_SECURITY="starttls",
        MAIL_IMAP_USER="helpdesk",
        MAIL_IMAP_PASSWORD="imap-secret",
        MAIL_IMAP_CA_FILE=dovecot["ca"],
    )
    return app_config


def test_fetch_from_imap_with_starttls(imap_app, app, runner):
    from helpdesk.core.mail.fetch import imap_connect

    connection = imap_connect(app.config)
    for name in (
        "gmail_alternative_utf8.eml",
        "greek_iso8859_7_qp.eml",
        "broken_mime_no_boundary.eml",
    ):
        raw = (SAMPLES / name).read_bytes()
        assert connection.append("INBOX", None, None, raw)[0] == "OK"
    connection.logout()

    result = runner.invoke(args=["mail", "fetch"])
    assert result.exit_code == 0, result.output
    assert "Done: 3 new tickets" in result.output
    assert count(Ticket) == 3
    connection = imap_connect(app.config)
    connection.select("INBOX")
    assert connection.uid("SEARCH", "ALL")[1] == [b""]  # expunged after ingest
    connection.logout()
    again = runner.invoke(args=["mail", "fetch"])
    assert "Done: 0 new tickets" in again.output


def test_imap_with_wrong_password_is_a_clear_error(imap_app, app, runner):
    app.config["MAIL_IMAP_PASSWORD"] = "wrong"
    result = runner.invoke(args=["mail", "fetch"])
    assert result.exit_code != 0 and "cannot open the mailbox" in result.output
