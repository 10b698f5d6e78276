"""Opt-out rules: the keywords carriers honour, the derived ids a send reads by, and
the one normal form an address is kept and looked up under."""

from __future__ import annotations

import base64
import hashlib

import pytest

from shared.domain.opt_outs import (
    DEFAULT_START,
    DEFAULT_STOP,
    keyword_action,
    lookup_address,
    normalise_receiver,
    opt_out_id,
)


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("STOP", "stop"),
        ("stop", "stop"),
        ("  Stop \n", "stop"),
        ("unsubscribe", "stop"),
        ("StopAll", "stop"),
        ("start", "start"),
        (" YES ", "start"),
        ("unstop", "start"),
        ("stop please", None),
        ("please stop", None),
        ("STOP!", None),
        ("", None),
        ("   ", None),
        ("yes, stop", None),
    ],
)
def test_the_whole_trimmed_message_in_any_case_is_the_keyword(
    text: str, action: str | None
) -> None:
    assert keyword_action(text, DEFAULT_STOP, DEFAULT_START) == action


def test_a_tenants_own_keywords_replace_the_defaults() -> None:
    assert keyword_action("arrêt", ["ARRÊT"], ["GO"]) == "stop"
    assert keyword_action("stop", ["ARRÊT"], ["GO"]) is None
    assert keyword_action("go", ["ARRÊT"], ["GO"]) == "start"


def test_a_word_in_both_lists_stops() -> None:
    assert keyword_action("yes", ["YES"], ["YES"]) == "stop"


def test_an_empty_list_never_matches() -> None:
    assert keyword_action("", [], []) is None
    assert keyword_action("stop", [], DEFAULT_START) is None


def test_the_id_is_a_prefixed_hash_of_tenant_type_and_address() -> None:
    digest = hashlib.sha256(b"tn_1\nsms\n+4791234567").digest()
    expected = "opt_" + base64.b32encode(digest).decode().lower()[:26]
    assert opt_out_id("tn_1", "sms", "+4791234567") == expected
    assert len(expected) == 30


def test_ids_differ_by_tenant_type_and_address() -> None:
    ids = {
        opt_out_id("tn_1", "sms", "+4791234567"),
        opt_out_id("tn_2", "sms", "+4791234567"),
        opt_out_id("tn_1", "whatsapp", "+4791234567"),
        opt_out_id("tn_1", "sms", "+4791234568"),
    }
    assert len(ids) == 4


@pytest.mark.parametrize(
    ("channel_type", "address", "normal"),
    [
        ("sms", "+47 912 34 567", "+4791234567"),
        ("whatsapp", " +4791234567 ", "+4791234567"),
        ("sms", "91234567", None),
        ("sms", "bob@example.com", None),
        ("email", "Bob@Example.COM", "bob@example.com"),
        ("email", "+4791234567", None),
        ("telegram", "123456789", "123456789"),
        ("telegram", "not a chat", None),
        ("push", "token/with+odd=chars", "token/with+odd=chars"),
        ("push", "   ", None),
        # The sandbox carries every kind: the address's shape tells which.
        ("sandbox", "+47 912 34 567", "+4791234567"),
        ("sandbox", "Bob@Example.COM", "bob@example.com"),
        ("sandbox", "@some_user", "@some_user"),
    ],
)
def test_an_address_has_one_normal_form_per_channel_type(
    channel_type: str, address: str, normal: str | None
) -> None:
    assert normalise_receiver(channel_type, address) == normal


def test_an_address_that_is_not_valid_is_looked_up_as_given_and_finds_nothing() -> None:
    assert lookup_address("sms", " 91234567 ") == "91234567"
    assert lookup_address("sms", "+47 912 34 567") == "+4791234567"
