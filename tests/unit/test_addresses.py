"""Address rules per terminal type, and what the sandbox and SMTP channels carry."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.providers.sandbox import PROVIDER as SANDBOX_PROVIDER
from shared.adapters.providers.smtp import PROVIDER as SMTP_PROVIDER
from shared.domain.addresses import (
    check_message_for_channel,
    normalise_address,
    normalise_email,
    normalise_phone,
)
from shared.domain.errors import ValidationFailed
from shared.domain.messages import MessageCreate, Terminal

SANDBOX, SMTP = SANDBOX_PROVIDER.specs[0], SMTP_PROVIDER.specs[0]
NOREPLY = Terminal(type="email", address="noreply@acme.example")


def message(**fields: Any) -> MessageCreate:
    raw: dict[str, Any] = {
        "channel": "c",
        "receiver": {"type": "email", "address": "bob@example.com"},
        "content": {"type": "text", "text": "hi"},
    }
    raw.update(fields)
    return MessageCreate.model_validate(raw)


def refusal(msg: MessageCreate, spec: Any, default: Terminal | None = None) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        check_message_for_channel(msg, spec, default)
    return caught.value


def test_an_email_domain_is_lowercased_and_the_local_part_kept() -> None:
    assert normalise_email("Bob@Example.COM") == "Bob@example.com"


@pytest.mark.parametrize("bad", ["bob", "bob@@example.com", "bob@example", "@example.com", ""])
def test_a_malformed_email_is_refused(bad: str) -> None:
    assert normalise_email(bad) is None


@pytest.mark.parametrize(
    ("given", "e164"),
    [
        ("+4791234567", "+4791234567"),
        ("+14155552671", "+14155552671"),
        ("+47 912 34 567", "+4791234567"),
    ],
)
def test_a_valid_phone_number_comes_out_in_e164(given: str, e164: str) -> None:
    assert normalise_phone(given) == e164


@pytest.mark.parametrize(
    "bad",
    [
        "4791234567",  # no +: the country code is required
        "+99912",  # no such country
        "+4712345678",  # a Norwegian number cannot start with 1
        "+47abc",
        "+",
    ],
)
def test_an_invalid_phone_number_is_refused(bad: str) -> None:
    assert normalise_phone(bad) is None


@pytest.mark.parametrize("ok", ["Acme", "ACME Shop", "Acme-2", "A1", "a.b&c_d-e", "X" * 11])
def test_an_alphanumeric_sender_has_1_to_11_characters_with_a_letter(ok: str) -> None:
    assert normalise_address("alphanumeric", ok) == ok


@pytest.mark.parametrize("bad", ["12345", "X" * 12, "", "Acme!", "Æøå", "  "])
def test_an_alphanumeric_sender_outside_the_rules_is_refused(bad: str) -> None:
    assert normalise_address("alphanumeric", bad) is None


@pytest.mark.parametrize("ok", ["123456789", "-1001234567890", "@acme_bot", "@abcde"])
def test_a_telegram_receiver_is_a_chat_id_or_a_username(ok: str) -> None:
    assert normalise_address("telegram", ok) == ok


@pytest.mark.parametrize("bad", ["@abcd", "@1acme", "acme", "12a", "@" + "a" * 33, "1" * 21])
def test_a_telegram_address_outside_the_rules_is_refused(bad: str) -> None:
    assert normalise_address("telegram", bad) is None


@pytest.mark.parametrize(
    ("kind", "ok"),
    [("url", "https://hooks.example/x"), ("url", "http://a.b"), ("topic", "news.en_GB-1")],
)
def test_urls_and_topics_that_follow_the_rules_pass(kind: str, ok: str) -> None:
    assert normalise_address(kind, ok) == ok


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("url", "ftp://a.b/x"),
        ("url", "https://"),
        ("url", "hooks.example"),
        ("topic", "a b"),
        ("topic", ""),
    ],
)
def test_urls_and_topics_outside_the_rules_are_refused(kind: str, bad: str) -> None:
    assert normalise_address(kind, bad) is None


def test_a_device_token_is_opaque_but_not_blank() -> None:
    assert normalise_address("device", "tok:123") == "tok:123"
    assert normalise_address("device", "   ") is None


def test_repeated_phone_numbers_are_parsed_once() -> None:
    number = "+4791234599"
    normalise_phone(number)
    hits = normalise_phone.cache_info().hits
    assert normalise_phone(number) == "+4791234599"
    assert normalise_phone.cache_info().hits == hits + 1


def test_repeated_email_addresses_are_parsed_once() -> None:
    address = "cache-me@example.com"
    normalise_email(address)
    hits = normalise_email.cache_info().hits
    normalise_email(address)
    normalise_email(address)
    assert normalise_email.cache_info().hits == hits + 2


def test_the_sandbox_takes_any_receiver_and_needs_no_sender() -> None:
    msg = message(receiver={"type": "phone", "address": "+47 912 34 567"})
    receiver, sender = check_message_for_channel(msg, SANDBOX, None)
    assert receiver.address == "+4791234567"  # normalised on the way in
    assert sender is None


def test_smtp_refuses_a_phone_receiver() -> None:
    err = refusal(message(receiver={"type": "phone", "address": "+4791234567"}), SMTP, NOREPLY)
    assert err.code == "RECEIVER_NOT_SUPPORTED"
    assert [e.field for e in err.errors] == ["receiver.type"]


@pytest.mark.parametrize(
    "content",
    [
        {"type": "media", "url": "https://x.example/a.png", "media_type": "image/png"},
        {"type": "push", "title": "t"},
        {"type": "template", "template": "welcome"},
    ],
)
def test_smtp_refuses_content_it_cannot_carry(content: dict[str, Any]) -> None:
    err = refusal(message(content=content), SMTP, NOREPLY)
    assert err.code == "CONTENT_NOT_SUPPORTED"


def test_smtp_refuses_an_attachment_given_by_url() -> None:
    content = {
        "type": "text",
        "text": "see attached",
        "attachments": [
            {"filename": "a.pdf", "content_type": "application/pdf", "url": "https://x.example/a"}
        ],
    }
    err = refusal(message(content=content), SMTP, NOREPLY)
    assert err.code == "VALIDATION_FAILED"
    assert [e.field for e in err.errors] == ["content.attachments.0.url"]


def test_the_sandbox_takes_an_attachment_by_url() -> None:
    content = {
        "type": "html",
        "html": "<p>x</p>",
        "attachments": [
            {"filename": "a.pdf", "content_type": "application/pdf", "url": "https://x.example/a"}
        ],
    }
    check_message_for_channel(message(content=content), SANDBOX, None)


def test_an_attachment_needs_exactly_one_of_content_or_url() -> None:
    content = {
        "type": "text",
        "text": "x",
        "attachments": [{"filename": "a.txt", "content_type": "text/plain"}],
    }
    err = refusal(message(content=content), SANDBOX)
    assert [e.field for e in err.errors] == ["content.attachments.0"]


def test_smtp_takes_an_attachment_given_as_base64() -> None:
    content = {
        "type": "text",
        "text": "x",
        "attachments": [{"filename": "a.txt", "content_type": "text/plain", "content": "aGk="}],
    }
    check_message_for_channel(message(content=content), SMTP, NOREPLY)


def test_smtp_without_a_sender_or_default_sender_is_refused() -> None:
    err = refusal(message(), SMTP, None)
    assert err.code == "VALIDATION_FAILED"
    assert [e.field for e in err.errors] == ["sender"]


def test_smtp_uses_the_channels_default_sender() -> None:
    _, sender = check_message_for_channel(message(), SMTP, NOREPLY)
    assert sender == NOREPLY


def test_a_given_sender_wins_over_the_default_and_is_normalised() -> None:
    msg = message(sender={"type": "email", "address": "Alerts@ACME.example"})
    _, sender = check_message_for_channel(msg, SMTP, NOREPLY)
    assert sender is not None
    assert sender.address == "Alerts@acme.example"


def test_smtp_refuses_a_sender_of_another_type() -> None:
    msg = message(sender={"type": "alphanumeric", "address": "Acme"})
    err = refusal(msg, SMTP, None)
    assert [e.field for e in err.errors] == ["sender.type"]


def test_every_address_problem_is_reported_at_once() -> None:
    msg = message(
        receiver={"type": "email", "address": "not-an-address"},
        sender={"type": "email", "address": "nor-this"},
    )
    err = refusal(msg, SMTP, None)
    assert [e.field for e in err.errors] == ["receiver.address", "sender.address"]
