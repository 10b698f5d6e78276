"""A Twilio Programmable Messaging peer: the Messages API as Twilio publishes it.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, HTTP Basic
auth with the Account SID and Auth Token or an API key SID and secret (else 401 with
code 20003). Answers 201 with a Message resource, or Twilio's error body
``{code, message, more_info, status}``:

- Twilio's test-credential magic numbers answer their documented errors (To
  +15005550001 → 21211, …0002 → 21612, …0003 → 21408, …0004 → 21610, …0009 → 21614;
  From +15005550001 → 21212, …0007 → 21606, …0008 → 21611);
- ``fail_next`` answers chosen errors (status, code, headers) to the next requests;
- missing To/From/Body and mixed channels answer 21604, 21603, 21602 and 21910.

``status_callback`` and ``incoming_message`` build callbacks signed as Twilio signs
them (X-Twilio-Signature over the URL and the sorted POST parameters).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tests.peers.base import Peer

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
MAGIC_FROM = {
    "+15005550001": (21212, "The 'From' number +15005550001 is not a valid phone number."),
    "+15005550007": (21606, "The From phone number is not a valid, SMS-capable number."),
    "+15005550008": (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
    ),
}


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """As Twilio's docs say: URL, then each sorted name+value, HMAC-SHA1, base64."""
    data = url
    for name, value in sorted(params):
        data += name + value
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


@dataclass
class Failure:
    """An error answer; without ``code``, an HTML page, as a proxy in front would send."""

    status: int
    code: int | None
    message: str = "Simulated failure"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SignedCallback:
    """A callback as Twilio would POST it: send ``body`` with ``headers`` to ``url``."""

    url: str
    params: list[tuple[str, str]]
    headers: dict[str, str]

    @property
    def body(self) -> bytes:
        return urlencode(self.params).encode()


@dataclass
class TwilioPeer(Peer):
    account_sid: str = field(default_factory=lambda: sid("AC"))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    api_key_sid: str = field(default_factory=lambda: sid("SK"))
    api_key_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    fail_next: list[Failure] = field(default_factory=list)
    messages: list[dict[str, list[str]]] = field(default_factory=list)
    """The forms of the messages accepted, each field's values in order."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{account_sid}/Messages.json", self._create)

    @property
    def credentials(self) -> dict[str, str]:
        return {"account_sid": self.account_sid, "auth_token": self.auth_token}

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorised(request.headers.get("Authorization", "")):
            return error(
                401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            )
        if request.match_info["account_sid"] != self.account_sid:
            return error(404, 20404, "The requested resource was not found")
        if self.fail_next:
            failure = self.fail_next.pop(0)
            return error(failure.status, failure.code, failure.message, failure.headers)
        if request.content_type != "application/x-www-form-urlencoded":
            return error(400, 21602, "Message body is required.")
        form: dict[str, list[str]] = {}
        for name, value in parse_qsl(await request.text(), keep_blank_values=True):
            form.setdefault(name, []).append(value)
        problem = self._refusal(form)
        if problem is not None:
            return error(400, *problem)
        self.messages.append(form)
        return web.json_response(self._resource(form), status=201)

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        pairs = {self.account_sid: self.auth_token, self.api_key_sid: self.api_key_secret}
        return user in pairs and hmac.compare_digest(pairs[user], password)

    @staticmethod
    def _refusal(form: dict[str, list[str]]) -> tuple[int, str] | None:
        to = form.get("To", [""])[0]
        sender = form.get("From", [""])[0]
        if not to:
            return 21604, "A 'To' phone number is required."
        if not sender and not form.get("MessagingServiceSid"):
            return 21603, "A 'From' phone number is required."
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return 21602, "Message body is required."
        if sender and to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
            return 21910, "Invalid From and To pair. From and To should be of the same channel."
        number = to.removeprefix("whatsapp:")
        if number in MAGIC_TO:
            return MAGIC_TO[number]
        if sender.removeprefix("whatsapp:") in MAGIC_FROM:
            return MAGIC_FROM[sender.removeprefix("whatsapp:")]
        if not E164.match(number):
            return 21211, f"The 'To' number {to} is not a valid phone number."
        if len(form.get("Body", [""])[0]) > 1600:
            return 21617, "The concatenated message body exceeds the 1600 character limit."
        return None

    def _resource(self, form: dict[str, list[str]]) -> dict[str, object]:
        message_sid = sid("MM" if form.get("MediaUrl") else "SM")
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}"
        now = formatdate(usegmt=True)
        service = form.get("MessagingServiceSid", [None])[0]
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", [""])[0],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From", [None])[0],
            "messaging_service_sid": service,
            "num_media": str(len(form.get("MediaUrl", []))),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{path}/Media.json"},
            "to": form["To"][0],
            "uri": f"{path}.json",
        }

    # -- callbacks, signed as Twilio signs them ---------------------------------

    def signed(self, url: str, params: list[tuple[str, str]]) -> SignedCallback:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(self.auth_token, url, params),
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        return SignedCallback(url, params, headers)

    def status_callback(
        self,
        url: str,
        message_sid: str,
        status: str,
        *,
        to: str = "+4791234567",
        sender: str = "+15005550006",
        error_code: str | None = None,
    ) -> SignedCallback:
        params = [
            ("AccountSid", self.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("From", sender),
            ("MessageSid", message_sid),
            ("MessageStatus", status),
            ("SmsSid", message_sid),
            ("SmsStatus", status),
            ("To", to),
        ]
        if error_code is not None:
            params.append(("ErrorCode", error_code))
        return self.signed(url, params)

    def incoming_message(
        self,
        url: str,
        *,
        sender: str,
        to: str,
        body: str = "",
        media: tuple[tuple[str, str], ...] = (),
        profile_name: str | None = None,
        message_sid: str | None = None,
    ) -> SignedCallback:
        """An incoming SMS/MMS (or WhatsApp, with whatsapp: addresses); media (url, type)."""
        message_sid = message_sid or sid("MM" if media else "SM")
        params = [
            ("AccountSid", self.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("Body", body),
            ("From", sender),
            ("FromCountry", "NO"),
            ("MessageSid", message_sid),
            ("NumMedia", str(len(media))),
            ("NumSegments", "1"),
            ("SmsMessageSid", message_sid),
            ("SmsSid", message_sid),
            ("SmsStatus", "received"),
            ("To", to),
            ("ToCity", ""),
        ]
        for i, (media_url, media_type) in enumerate(media):
            params += [(f"MediaContentType{i}", media_type), (f"MediaUrl{i}", media_url)]
        if profile_name is not None:
            params += [
                ("ProfileName", profile_name),
                ("WaId", sender.removeprefix("whatsapp:").removeprefix("+")),
            ]
        return self.signed(url, params)


def error(
    status: int, code: int | None, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    if code is None:
        page = f"<html><body>{status} {message}</body></html>"
        return web.Response(status=status, text=page, content_type="text/html", headers=headers)
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)
