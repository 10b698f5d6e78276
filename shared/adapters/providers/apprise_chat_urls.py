"""Apprise URLs: which schemes the apprise provider takes, where each one connects,
and which parts of a URL must never be shown.

Only schemes whose destination OCM knows are accepted, so that none slips past the
egress check:

- HOSTED schemes connect to the host the URL names (a self-hosted server or a
  webhook endpoint): that host is resolved and checked before each send. Two of
  them can point at a public service instead: ``ntfy://topic`` (no host: ntfy.sh)
  and Matrix's t2bot webhooks (t2bot.io). Matrix's server discovery, which would
  move it to whatever host a ``.well-known`` document names, is turned off.
- SERVICE schemes connect only to their service's own public API host, whatever
  the URL says (its "host" part is a token there, and is never looked up in DNS).

Every other scheme Apprise knows (e-mail, SMS gateways, desktop notifications, …)
is refused: their hosts are not checked, or they are not chat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from apprise import Apprise, AppriseAsset, NotificationManager, NotifyBase

from shared.domain.errors import ProviderError

HOSTED_SCHEMES = frozenset(
    {
        "json", "jsons", "form", "forms", "xml", "xmls",  # generic webhooks
        "ntfy", "ntfys",
        "gotify", "gotifys",
        "mmost", "mmosts",  # Mattermost
        "rocket", "rockets",  # Rocket.Chat
        "matrix", "matrixs",
        "workflow", "workflows",  # Power Automate (Microsoft Teams)
        "apprise", "apprises",  # an Apprise API server
    }
)  # fmt: skip
SERVICE_SCHEMES = frozenset(
    {
        "slack",
        "discord",
        "tgram",  # Telegram
        "gchat",  # Google Chat
        "wxteams",  # Webex
        "webex",
    }
)
_PUBLIC_MODES = frozenset({"cloud", "t2bot"})  # ntfy.sh, t2bot.io
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True)
class Destination:
    """The host (and port) Apprise will connect to for a URL."""

    host: str
    port: int


def load(url: str, asset: AppriseAsset) -> tuple[NotifyBase, Destination | None]:
    """Apprise's service for ``url``, and the host it connects to when the URL names it.

    Raises a permanent ProviderError for a URL that is missing, unloadable, or of a
    scheme this provider does not take; its reason never quotes the URL.
    """
    match = _SCHEME.match(url)
    if match is None:
        raise _invalid("the Apprise URL is missing or has no scheme://")
    scheme = match[1].lower()
    plugins = NotificationManager()  # type: ignore[no-untyped-call]  # a singleton
    if scheme not in HOSTED_SCHEMES | SERVICE_SCHEMES or scheme not in plugins:
        raise ProviderError(
            "permanent",
            "APPRISE_SCHEME_UNSUPPORTED",
            f"{scheme}:// is not a service this provider sends to",
        )
    if not plugins[scheme].enabled:
        raise ProviderError(
            "permanent",
            "APPRISE_SCHEME_UNSUPPORTED",
            f"{scheme}:// is disabled here (Apprise lacks a library it needs)",
        )
    try:
        service = Apprise.instantiate(url, asset=asset, suppress_exceptions=False)
    except Exception:  # the plugin refused its arguments; its text may quote them
        service = None
    if service is None:
        raise _invalid(f"Apprise cannot use this {scheme}:// URL: check its form and tokens")
    return service, _destination(scheme, service)


def _destination(scheme: str, service: NotifyBase) -> Destination | None:
    if scheme in SERVICE_SCHEMES or getattr(service, "mode", None) in _PUBLIC_MODES:
        return None
    if hasattr(service, "discovery"):
        service.discovery = False
    host = str(service.host or "")
    if not host:
        raise _invalid(f"the {scheme}:// URL names no host")
    port = service.port if isinstance(service.port, int) else (443 if service.secure else 80)
    return Destination(host, port)


def secrets_of(url: str, *, keep_host: bool) -> tuple[str, ...]:
    """Every part of ``url`` that may be a secret (longest first), as written, decoded
    and encoded: user, password, path segments, query values, fragment, and the host
    unless ``keep_host`` (a SERVICE scheme's "host" is a token)."""
    try:
        parts = urlsplit(url)
        pieces = [
            url,
            parts.netloc,
            parts.username,
            parts.password,
            parts.fragment,
            *parts.path.split("/"),
            *(value for _, value in parse_qsl(parts.query)),
            None if keep_host else parts.hostname,
        ]
    except ValueError:
        pieces = [url]
    found: set[str] = set()
    for piece in pieces:
        if piece and len(piece) >= 3:  # shorter ones would mask ordinary words
            found |= {piece, unquote(piece), quote(unquote(piece), safe="")}
    return tuple(sorted(found, key=len, reverse=True))


def _invalid(reason: str) -> ProviderError:
    return ProviderError("permanent", "APPRISE_URL_INVALID", reason)


__all__ = ["HOSTED_SCHEMES", "SERVICE_SCHEMES", "Destination", "load", "secrets_of"]
