"""A credential in error text is masked in each form it travels in."""

from __future__ import annotations

import base64
from urllib.parse import quote

from shared.domain.redaction import redact

SID, TOKEN = "AC0123456789", "s3cr3t/tok+en="


def test_a_secret_is_masked_as_itself_url_encoded_and_in_basic_credentials() -> None:
    basic = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    text = f"raw {TOKEN}; url {quote(TOKEN, safe='')}; Authorization: Basic {basic}"
    masked = redact(text, [TOKEN], [SID, TOKEN])
    assert masked == "raw ***; url ***; Authorization: Basic ***"


def test_base64_of_a_secret_alone_and_unpadded_is_masked() -> None:
    alone = base64.urlsafe_b64encode(TOKEN.encode()).rstrip(b"=").decode()
    assert redact(f"bearer {alone}", [TOKEN]) == "bearer ***"


def test_text_without_secrets_is_unchanged_and_short_values_are_not_searched() -> None:
    assert redact("Twilio answered HTTP 400", [TOKEN, "ab"], [SID]) == "Twilio answered HTTP 400"
