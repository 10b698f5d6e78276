"""Message templates: the resource, the checks a template passes before it is kept, and
rendering a template's variant for a channel type.

A template declares its variables and holds one variant per channel type (plus
``default``); each variant's sources are Jinja2. Sources compile and render in a
bounded sandbox (``shared.domain.template_sandbox``): a render's work, the values it
builds and each field's length are capped, and what the sandbox could not bound is
refused when the template is kept. What a variant's fields render to, per channel
type, is in ``shared.domain.template_rendering``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from jinja2 import TemplateSyntaxError, meta
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.channels import NAME_PATTERN
from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.messages import MAX_TEXT, FreeJson
from shared.domain.models import Document
from shared.domain.template_budget import budget
from shared.domain.template_rendering import MAX_HTML, Fields, check_data, render_variant
from shared.domain.template_sandbox import ENVIRONMENTS, compiled

VariantKey = Literal["email", "sms", "whatsapp", "telegram", "push", "chat", "sandbox", "default"]
VariableType = Literal["string", "number", "boolean", "any"]
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
LANGUAGE = r"^[a-z]{2,3}(?:_[A-Z]{2})?$"
"""Meta's template language codes: ``en``, ``en_US``, ``pt_BR``, ``fil``."""
RESERVED = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is"}
    | {"if", "else", "loop", "self", "range", "dict", "cycler", "joiner", "caller"}
)
"""Names a template could not reach as variables (literals, operators, globals)."""

MAX_SOURCES = 400_000
"""All sources of a template together: the document stays well inside a store's limit."""


class TemplateVariable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=IDENTIFIER, description="Referenced as {{ name }}.")
    required: bool = True
    type: VariableType = "string"
    description: str | None = Field(default=None, max_length=1024)


class WhatsAppTemplate(BaseModel):
    """A template approved by Meta, sent outside the 24-hour window."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$", description="The approved template's name.")
    language: str = Field(pattern=LANGUAGE, description="en_US, pt_BR, …")
    parameters: list[Annotated[str, Field(pattern=IDENTIFIER)]] = Field(
        default_factory=list,
        max_length=100,
        description="The variables filling the body's {{1}}, {{2}}, … in order.",
    )


class TemplateVariant(BaseModel):
    """Jinja2 sources for one channel type; which fields a type uses is checked."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, min_length=1, max_length=4096)
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    html: str | None = Field(default=None, min_length=1, max_length=MAX_HTML)
    title: str | None = Field(default=None, min_length=1, max_length=4096)
    whatsapp_template: WhatsAppTemplate | None = None


Variables = Annotated[list[TemplateVariable], Field(max_length=100)]


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Unique per tenant; immutable.")
    description: str | None = Field(default=None, max_length=1024)
    variables: Variables = Field(default_factory=list)
    variants: dict[VariantKey, TemplateVariant] = Field(
        min_length=1, description="By channel type; `default` serves the other types."
    )

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class TemplateUpdate(BaseModel):
    """``variables`` replace the list; ``variants`` merge by key (null removes one)."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=1024)
    variables: Variables | None = None
    variants: dict[VariantKey, TemplateVariant | None] | None = None


class TemplatePublic(BaseModel):
    id: str
    name: str
    description: str | None
    variables: list[TemplateVariable]
    variants: dict[VariantKey, TemplateVariant]
    created_at: str
    updated_at: str


class TemplatePreview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_type: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="email, sms, …")
    data: FreeJson = Field(default_factory=dict)
    language: str | None = Field(default=None, pattern=LANGUAGE)
    in_window: bool | None = Field(
        default=None, description="WhatsApp: false renders the variant's WhatsApp template."
    )


# What a variant of each key may carry, and what it needs at least one of.
_USES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "email": (frozenset({"subject", "text", "html"}), ("text", "html")),
    "push": (frozenset({"title", "text"}), ("title", "text")),
    "whatsapp": (frozenset({"text", "whatsapp_template"}), ("text", "whatsapp_template")),
    "default": (frozenset({"subject", "text", "html", "title"}), ("text",)),
}
_TEXT_ONLY = (frozenset({"text"}), ("text",))
SOURCES = ("subject", "text", "html", "title")


def check_template(
    variables: list[TemplateVariable], variants: Mapping[str, TemplateVariant]
) -> None:
    """Refuse a template that could not render: TEMPLATE_INVALID (shape, syntax),
    then TEMPLATE_VARIABLE_UNDECLARED (a source or parameter naming no variable)."""
    errors = _variable_problems(variables) + _variant_problems(variants)
    if sum(len(s) for v in variants.values() for s in _sources(v).values()) > MAX_SOURCES:
        errors.append(FieldError("variants", f"the sources exceed {MAX_SOURCES} characters"))
    for key, variant in variants.items():
        for name, source in _sources(variant).items():
            try:
                compiled(source, name == "html")
            except TemplateSyntaxError as exc:
                message = f"line {exc.lineno}: {exc.message}"
                errors.append(FieldError(f"variants.{key}.{name}", message))
            except RecursionError:
                errors.append(FieldError(f"variants.{key}.{name}", "nests too deeply"))
    if errors:
        raise ValidationFailed("The template is not valid", code="TEMPLATE_INVALID", errors=errors)
    undeclared = _undeclared({v.name for v in variables}, variants)
    if undeclared:
        raise ValidationFailed(
            "The template uses variables it does not declare",
            code="TEMPLATE_VARIABLE_UNDECLARED",
            errors=undeclared,
        )


def _sources(variant: TemplateVariant) -> dict[str, str]:
    return {name: s for name in SOURCES if (s := getattr(variant, name)) is not None}


def _variable_problems(variables: list[TemplateVariable]) -> list[FieldError]:
    errors, seen = [], set()
    for i, variable in enumerate(variables):
        if variable.name in seen:
            errors.append(FieldError(f"variables.{i}.name", "declared twice"))
        elif variable.name in RESERVED:
            errors.append(FieldError(f"variables.{i}.name", "reserved in templates"))
        seen.add(variable.name)
    return errors


def _variant_problems(variants: Mapping[str, TemplateVariant]) -> list[FieldError]:
    if not variants:
        return [FieldError("variants", "at least one variant")]
    errors = []
    for key, variant in variants.items():
        uses, needs = _USES.get(key, _TEXT_ONLY)
        given = variant.model_dump(exclude_none=True)
        errors += [
            FieldError(f"variants.{key}.{name}", f"a {key} variant does not use {name}")
            for name in given
            if name not in uses
        ]
        if not any(name in given for name in needs):
            errors.append(FieldError(f"variants.{key}", f"needs {' or '.join(needs)}"))
    return errors


def _undeclared(declared: set[str], variants: Mapping[str, TemplateVariant]) -> list[FieldError]:
    errors = []
    for key, variant in variants.items():
        for name, source in _sources(variant).items():
            used = meta.find_undeclared_variables(ENVIRONMENTS[name == "html"].parse(source))
            if used - declared:
                names = ", ".join(sorted(used - declared))
                errors.append(FieldError(f"variants.{key}.{name}", f"undeclared: {names}"))
        parameters = variant.whatsapp_template.parameters if variant.whatsapp_template else []
        errors += [
            FieldError(f"variants.{key}.whatsapp_template.parameters.{i}", "undeclared")
            for i, p in enumerate(parameters)
            if p not in declared
        ]
    return errors


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def render(
    template: Document,
    channel_type: str,
    data: Any,
    *,
    language: str | None = None,
    in_window: bool | None = None,
    at: str = "content.",
) -> tuple[Document, str | None]:
    """The content (and subject) a stored template renders to for a channel type.

    ``at`` prefixes the fields errors name (``content.data.x`` for a message)."""
    values = check_data(template["variables"], data, f"{at}data")
    variant = template["variants"].get(channel_type) or template["variants"].get("default")
    if variant is None:
        raise ValidationFailed(
            f"The template {template['name']!r} has no {channel_type} or default variant",
            code="TEMPLATE_VARIANT_MISSING",
            errors=[FieldError(f"{at}template", f"no {channel_type} or default variant")],
        )
    if language is not None and not re.match(LANGUAGE, language):
        raise ValidationFailed(
            "The language is not valid",
            errors=[FieldError(f"{at}language", "a language code like en_US")],
        )
    key = channel_type if channel_type in template["variants"] else "default"
    fields = Fields(template["name"], key, variant, values, at)
    with budget():  # one budget for all fields of the message
        return render_variant(fields, channel_type, language, in_window)
