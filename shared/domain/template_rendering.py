"""Rendering a stored template's variant: the data a message gives it, checked against
the declared variables, and the content each channel type gets from the variant's
fields, each capped at its channel's length.

``templates.render`` is the entry point; it opens the render's budget around this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.messages import MAX_TEXT
from shared.domain.models import Document
from shared.domain.template_budget import MAX_VALUE, weight
from shared.domain.template_sandbox import RenderError, render_source

MAX_HTML = 200_000
MAX_SUBJECT = 998
MAX_TITLE = 1024
MAX_PUSH_BODY = 4096


def render_variant(
    fields: Fields, channel_type: str, language: str | None, in_window: bool | None
) -> tuple[Document, str | None]:
    """The content (and, for email, the subject) a variant's ``fields`` render to for
    ``channel_type``; a WhatsApp variant's approved template is sent instead of its text
    outside the 24-hour window (``in_window`` false) or when it has no text."""
    variant, values = fields.variant, fields.values
    if channel_type == "email":
        return _email(fields), fields.line("subject", MAX_SUBJECT)
    if channel_type == "push":
        push = {
            "title": fields.line("title", MAX_TITLE),
            "body": fields.text("text", MAX_PUSH_BODY),
        }
        return {"type": "push", **{k: v for k, v in push.items() if v}, "data": {}}, None
    wt = variant.get("whatsapp_template")
    if channel_type == "whatsapp" and wt and (in_window is False or "text" not in variant):
        return _whatsapp_template(wt, values, language), None
    return {"type": "text", "text": fields.required("text", MAX_TEXT)}, None


def _email(fields: Fields) -> Document:
    if "html" not in fields.variant:
        return {"type": "text", "text": fields.required("text", MAX_TEXT)}
    content: Document = {"type": "html", "html": fields.required("html", MAX_HTML)}
    text = fields.text("text", MAX_TEXT)
    return {**content, "text": text} if text else content


def _whatsapp_template(wt: Document, values: dict[str, Any], language: str | None) -> Document:
    """What Meta sends as a template message: the body's parameters as text, in order."""
    parameters = ["" if values[p] is None else str(values[p]) for p in wt["parameters"]]
    return {
        "type": "template",
        "template": wt["name"],
        "language": language or wt["language"],
        "data": {"parameters": parameters},
    }


@dataclass(frozen=True, slots=True)
class Fields:
    """A variant's sources, rendered on demand with the message's values."""

    template: str
    key: str
    variant: Document
    values: dict[str, Any]
    at: str

    def text(self, name: str, limit: int) -> str | None:
        source = self.variant.get(name)
        if source is None:
            return None
        try:
            return render_source(source, name == "html", self.values, limit)
        except RenderError as exc:
            raise self._failed(name, str(exc)) from None

    def required(self, name: str, limit: int) -> str:
        rendered = self.text(name, limit)
        if not rendered:
            raise self._failed(name, "rendered empty")
        return rendered

    def line(self, name: str, limit: int) -> str | None:
        """A one-line field (subject, title): line breaks and runs of spaces become one."""
        rendered = self.text(name, limit)
        if rendered is None:
            return None
        return " ".join(rendered.split()) or None

    def _failed(self, name: str, message: str) -> ValidationFailed:
        return ValidationFailed(
            f"The template {self.template!r} could not be rendered ({self.key} {name}): {message}",
            code="TEMPLATE_RENDER_FAILED",
            errors=[FieldError(f"{self.at}template", f"variants.{self.key}.{name}: {message}")],
        )


def check_data(variables: list[Document], data: Any, at: str) -> dict[str, Any]:
    """Every declared variable's value (None for a missing optional one), or the
    first kind of problem (missing, unknown, invalid) with every problem listed."""
    if not isinstance(data, dict):
        raise ValidationFailed("The data is not valid", errors=[FieldError(at, "an object")])
    declared = {v["name"]: v for v in variables}
    missing = [
        FieldError(f"{at}.{name}", "required")
        for name, v in declared.items()
        if v.get("required", True) and data.get(name) is None
    ]
    unknown = [
        FieldError(f"{at}.{k}", "not a variable of the template") for k in data if k not in declared
    ]
    invalid = [
        FieldError(f"{at}.{k}", _TYPE_NAMES[declared[k]["type"]])
        for k, value in data.items()
        if k in declared and value is not None and not _is_type(value, declared[k]["type"])
    ]
    # No operation of the sandbox may build a value past MAX_VALUE: none is given one.
    too_large = [
        FieldError(f"{at}.{k}", f"at most {MAX_VALUE} characters")
        for k, value in data.items()
        if weight(value) > MAX_VALUE
    ]
    if too_large:
        raise ValidationFailed(
            "A template variable's value is too large",
            code="TEMPLATE_VALUE_TOO_LARGE",
            errors=too_large,
        )
    for code, detail, errors in (
        ("TEMPLATE_VARIABLE_MISSING", "A required template variable is missing", missing),
        ("TEMPLATE_VARIABLE_UNKNOWN", "The data names a variable the template lacks", unknown),
        ("TEMPLATE_VARIABLE_INVALID", "A template variable has the wrong type", invalid),
    ):
        if errors:
            raise ValidationFailed(detail, code=code, errors=missing + unknown + invalid)
    return {name: data.get(name) for name in declared}


_TYPE_NAMES = {"string": "a string", "number": "a number", "boolean": "true or false", "any": ""}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, bool) if kind == "boolean" else True
