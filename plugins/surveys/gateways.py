"""SMS gateways: ``twilio`` (the Twilio REST API, or any provider that speaks it, such as
SignalWire's LaML API) and ``console`` (the log, for development and the demo); other plugins
add more with ``helpdesk_sms_backends``. Also the check of Twilio's webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from helpdesk import ChannelUnavailable, DeliveryRefused

log = logging.getLogger(__name__)
Send = Callable[[dict[str, Any]], str]
MAX_ERROR_MESSAGE = 500
_console_ids = itertools.count(1)


def refused(message: str, code: str) -> DeliveryRefused:
    """A permanent refusal carrying the gateway's error ``code``."""
    error = DeliveryRefused(message)
    error.code = code
    return error


def make_twilio(config: Any) -> Send:
    """A sender over the Twilio Messages API: one kept-alive connection pool (through the
    proxy the environment names, as httpx's client would take) and the configured time-out
    (``SURVEYS_TWILIO_TIMEOUT`` seconds). It speaks to httpx's transport directly: the
    client's layers (auth flow, redirects, cookies) cost more than the call itself."""
    sid = config["SURVEYS_TWILIO_ACCOUNT_SID"]
    url = httpx.URL(
        f"{config['SURVEYS_TWILIO_BASE_URL'].rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
    )
    sender = config["SURVEYS_SMS_FROM"]
    credentials = f"{sid}:{config['SURVEYS_TWILIO_AUTH_TOKEN']}".encode()
    headers = {
        "Authorization": "Basic " + base64.b64encode(credentials).decode(),
        "User-Agent": "helpdesk-surveys",
    }
    timeout = {"timeout": httpx.Timeout(float(config["SURVEYS_TWILIO_TIMEOUT"])).as_dict()}
    transport = httpx.HTTPTransport(proxy=_environment_proxy(url))

    def send(sms: dict[str, Any]) -> str:
        form = {"To": sms["to"], "Body": sms["body"]}
        form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
        if sms.get("status_callback"):
            form["StatusCallback"] = sms["status_callback"]
        request = httpx.Request("POST", url, headers=headers, data=form, extensions=timeout)
        try:
            response = transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.HTTPError as exc:  # time-out, refused connection, broken answer
            raise ChannelUnavailable(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        # Only a busy or broken gateway is tried again; any other 4xx (a bad number, an
        # unsubscribed one, a rejected login) is a refusal with the gateway's code and message.
        if status == 429 or status >= 500:
            raise ChannelUnavailable(f"gateway answered {status}: {response.text[:200]}")
        if status >= 400:
            code, message = _error(response)
            raise refused(message, code)
        try:
            return str(response.json()["sid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ChannelUnavailable(f"gateway answered {status} without a sid") from exc

    return send


def _environment_proxy(url: httpx.URL) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``url`` (none when
    ``NO_PROXY`` covers its host)."""
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(url.host):
        return None
    return proxies.get(url.scheme) or proxies.get("all")


def _error(response: httpx.Response) -> tuple[str, str]:
    """The Twilio error ``(code, message)`` of a 4xx answer."""
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    code = str(data.get("code") or response.status_code)[:16]
    message = str(data.get("message") or response.reason_phrase)[:MAX_ERROR_MESSAGE]
    return code, message


def make_console(config: Any) -> Send:
    """A sender that writes each SMS to the log (development, the demo)."""

    def send(sms: dict[str, Any]) -> str:
        sid = f"CONSOLE{next(_console_ids):010d}"
        log.warning("SMS %s to %s: %s", sid, sms["to"], sms["body"])
        return sid

    return send


def signature(url: str, params: Iterable[tuple[str, str]], token: str) -> str:
    """Twilio's ``X-Twilio-Signature``: HMAC-SHA1 of the URL followed by each form field's
    name and value, sorted (a repeated pair once, as Twilio's own validator does), keyed
    with the auth token, in base64."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(url: str, params: Iterable[tuple[str, str]], token: str, given: str) -> bool:
    """Whether ``given`` is the signature of this request (never with an empty token)."""
    if not token or not given:
        return False
    return hmac.compare_digest(signature(url, params, token), given)
