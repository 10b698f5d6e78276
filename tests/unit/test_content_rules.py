"""What each channel type requires of content: SMS segments, e-mail subjects, push."""

from __future__ import annotations

import pytest

from shared.domain.content_rules import check_content, sms_segments
from shared.domain.errors import ValidationFailed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, ("gsm7", 1)),
        ("a" * 161, ("gsm7", 2)),
        ("a" * 306, ("gsm7", 2)),
        ("a" * 307, ("gsm7", 3)),
        ("€" * 80, ("gsm7", 1)),  # extension characters take two septets
        ("€" * 81, ("gsm7", 2)),
        ("Ærø, København" * 2, ("gsm7", 1)),
        ("ł" * 70, ("ucs2", 1)),
        ("ł" * 71, ("ucs2", 2)),
        ("ł" * 134, ("ucs2", 2)),
        ("ł" * 135, ("ucs2", 3)),
        ("😀" * 35, ("ucs2", 1)),  # a surrogate pair is two UTF-16 units
        ("😀" * 36, ("ucs2", 2)),
    ],
)
def test_sms_segments_follow_gsm7_and_ucs2(text: str, expected: tuple[str, int]) -> None:
    assert sms_segments(text) == expected


def test_an_sms_longer_than_the_channel_allows_is_refused() -> None:
    check_content("sms", {"type": "text", "text": "a" * 306}, None, max_segments=2)
    with pytest.raises(ValidationFailed) as refused:
        check_content("sms", {"type": "text", "text": "a" * 307}, None, max_segments=2)
    assert refused.value.code == "CONTENT_TOO_LONG"


def test_an_email_needs_a_subject() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_content("email", {"type": "text", "text": "hi"}, "  ", max_segments=10)
    assert refused.value.code == "SUBJECT_REQUIRED"
    check_content("email", {"type": "text", "text": "hi"}, "Hello", max_segments=10)


def test_a_push_needs_a_title_or_a_body() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_content("push", {"type": "push", "data": {"k": "v"}}, None, max_segments=10)
    assert refused.value.code == "PUSH_CONTENT_EMPTY"
    check_content("push", {"type": "push", "title": "Hi"}, None, max_segments=10)


def test_the_sandbox_takes_anything() -> None:
    check_content("sandbox", {"type": "text", "text": "a" * 5000}, None, max_segments=1)
