"""Message templates: create, read, update, delete, preview, and render a message's
template content for its channel (the accept path calls ``render_content``)."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.containers import TEMPLATES
from shared.domain.errors import ConflictError, FieldError, NotFoundError, ValidationFailed
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.templates import (
    TemplateCreate,
    TemplatePreview,
    TemplateUpdate,
    TemplateVariable,
    TemplateVariant,
    check_template,
    render,
)
from shared.ports import Conflict, Page
from shared.services import concurrency
from shared.services.deps import Deps
from shared.services.lookups import find_named, find_named_cached, forget_named
from shared.services.pages import in_creation_order

INTERNAL_FIELDS = ("_etag", "tenant_id")


def public(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}


def _stored(
    variables: list[TemplateVariable], variants: dict[str, TemplateVariant]
) -> dict[str, Any]:
    return {
        "variables": [v.model_dump() for v in variables],
        "variants": {k: v.model_dump(exclude_none=True) for k, v in variants.items()},
    }


async def create_template(deps: Deps, tenant_id: str, data: TemplateCreate) -> Document:
    variants: dict[str, TemplateVariant] = {k: v for k, v in data.variants.items()}
    check_template(data.variables, variants)
    now = to_utc_text(deps.clock.now())
    doc: Document = {
        "id": new_id("tpl"),
        "tenant_id": tenant_id,
        "name": data.name,
        "description": data.description,
        **_stored(data.variables, variants),
        "created_at": now,
        "updated_at": now,
    }
    try:
        return await deps.store.create(TEMPLATES, doc)
    except Conflict:
        raise ConflictError(
            f"A template named {data.name!r} exists already", code="TEMPLATE_NAME_TAKEN"
        ) from None


async def find_by_name(deps: Deps, tenant_id: str, name: str) -> Document | None:
    return await find_named(deps.store, TEMPLATES, tenant_id, name)


async def find_for_sending(deps: Deps, tenant_id: str, name: str) -> Document | None:
    """The template a message names (cached briefly: a batch reads it once)."""
    return await find_named_cached(deps.lookups, deps.store, TEMPLATES, tenant_id, name)


async def exists(deps: Deps, tenant_id: str, name: str) -> bool:
    return await find_for_sending(deps, tenant_id, name) is not None


def forget(deps: Deps, doc: Document) -> None:
    """Drop a template from the lookup cache after any write to it."""
    forget_named(deps.lookups, TEMPLATES, doc["tenant_id"], str(doc["name"]))


async def get_template(deps: Deps, tenant_id: str, name: str) -> Document:
    doc = await find_by_name(deps, tenant_id, name)
    if doc is None:
        raise NotFoundError(f"No template named {name!r}", code="TEMPLATE_NOT_FOUND")
    return doc


async def list_templates(deps: Deps, tenant_id: str, *, limit: int, cursor: str | None) -> Page:
    return await in_creation_order(deps.store, TEMPLATES, tenant_id, limit=limit, cursor=cursor)


async def update_template(deps: Deps, tenant_id: str, name: str, data: TemplateUpdate) -> Document:
    async def change(doc: Document) -> None:
        variables = data.variables
        if variables is None:
            variables = [TemplateVariable.model_validate(v) for v in doc["variables"]]
        variants = {k: TemplateVariant.model_validate(v) for k, v in doc["variants"].items()}
        for key, variant in (data.variants or {}).items():
            if variant is None:
                variants.pop(key, None)
            else:
                variants[key] = variant
        check_template(variables, variants)
        doc.update(_stored(variables, variants))
        if "description" in data.model_fields_set:
            doc["description"] = data.description
        doc["updated_at"] = to_utc_text(deps.clock.now())

    tries = concurrency.for_request("The template changed while updating")
    written = await concurrency.rewrite(
        deps.store, TEMPLATES, lambda: get_template(deps, tenant_id, name), change, tries
    )
    forget(deps, written)
    return written


async def delete_template(deps: Deps, tenant_id: str, name: str) -> Document:
    """Delete a template (its name is free at once); returns what was deleted.

    Messages already accepted keep the content it rendered to."""
    doc = await get_template(deps, tenant_id, name)
    await deps.store.delete(TEMPLATES, tenant_id, doc["id"])
    forget(deps, doc)
    return doc


async def preview(
    deps: Deps, tenant_id: str, name: str, data: TemplatePreview
) -> tuple[Document, str | None]:
    """What a message with this data would carry on a channel of the given type."""
    doc = await get_template(deps, tenant_id, name)
    return await asyncio.to_thread(
        render,
        doc,
        data.channel_type,
        data.data,
        language=data.language,
        in_window=data.in_window,
        at="",
    )


async def render_content(
    deps: Deps,
    tenant_id: str,
    content: dict[str, Any],
    channel_type: str,
    *,
    in_window: bool | None = None,
) -> tuple[dict[str, Any], str | None]:
    """A message's ``{"type": "template", "template", "language"?, "data"}`` content
    rendered for its channel type: (content, subject or None).

    ``in_window`` (WhatsApp): False sends the variant's WhatsApp template. A template
    the tenant lacks is bad input (422 TEMPLATE_NOT_FOUND), as is bad data."""
    name = content.get("template")
    template = await find_for_sending(deps, tenant_id, name) if isinstance(name, str) else None
    return await render_found(template, content, channel_type, in_window=in_window)


async def render_found(
    template: Document | None,
    content: dict[str, Any],
    channel_type: str,
    *,
    in_window: bool | None = None,
) -> tuple[dict[str, Any], str | None]:
    """``render_content`` for a template already looked up (None: not found)."""
    if template is None:
        raise ValidationFailed(
            f"No template named {content.get('template')!r}",
            code="TEMPLATE_NOT_FOUND",
            errors=[FieldError("content.template", "no template of that name")],
        )
    # Off the event loop: a render may use its whole work budget (docs/templates.md),
    # and the loop serves every tenant's requests meanwhile.
    return await asyncio.to_thread(
        render,
        template,
        channel_type,
        content.get("data", {}),
        language=content.get("language"),
        in_window=in_window,
    )
