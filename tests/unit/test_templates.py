"""Message templates: the checks a template passes before it is kept, rendering per
channel type, the data a message gives it, and a sandbox that bounds what a tenant's
template can do."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.containers import TEMPLATES
from shared.domain.errors import ConflictError, ValidationFailed
from shared.domain.template_budget import MAX_VALUE
from shared.domain.templates import (
    TemplateCreate,
    TemplateUpdate,
    check_template,
    render,
)
from shared.services.channels import templates
from shared.services.onboarding import signup
from tests.unit.conftest import World


def template(variables: list[dict[str, Any]], **variants: dict[str, Any]) -> dict[str, Any]:
    """A template as the store keeps it, checked as create would check it."""
    data = TemplateCreate.model_validate(
        {"name": "t", "variables": variables, "variants": variants}
    )
    check_template(data.variables, {k: v for k, v in data.variants.items()})
    return {
        "name": data.name,
        "variables": [v.model_dump() for v in data.variables],
        "variants": {k: v.model_dump(exclude_none=True) for k, v in data.variants.items()},
    }


def text(source: str, **data: Any) -> str:
    """``source`` rendered as an SMS text with ``data`` (every key a variable of type any)."""
    variables = [{"name": k, "type": "any"} for k in data]
    content, _ = render(template(variables, default={"text": source}), "sms", data)
    return str(content["text"])


def refused(call: Any, *args: Any, **kwargs: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        call(*args, **kwargs)
    return caught.value


def refused_template(
    variables: list[dict[str, Any]], **variants: dict[str, Any]
) -> ValidationFailed:
    return refused(template, variables, **variants)


NAME = [{"name": "name"}]


# ---------------------------------------------------------------------------
# Rendering per channel type
# ---------------------------------------------------------------------------


def test_html_is_autoescaped_and_text_and_subject_are_not() -> None:
    welcome = template(
        NAME,
        email={"subject": "Hi {{ name }}", "html": "<p>{{ name }}</p>", "text": "Hi {{ name }}"},
    )
    content, subject = render(welcome, "email", {"name": "<Bob & Co>"})
    assert content == {
        "type": "html",
        "html": "<p>&lt;Bob &amp; Co&gt;</p>",
        "text": "Hi <Bob & Co>",
    }
    assert subject == "Hi <Bob & Co>"


def test_an_email_variant_without_html_sends_text_and_a_subject_stays_on_one_line() -> None:
    notice = template(NAME, email={"subject": "Hello\n  {{ name }}\r\n!", "text": "Hi"})
    assert render(notice, "email", {"name": "Bob"}) == (
        {"type": "text", "text": "Hi"},
        "Hello Bob !",
    )


def test_block_tags_on_their_own_lines_leave_no_blank_lines() -> None:
    source = "Hi {{ name }}\n  {% if name == 'Bob' %}\nWelcome back\n  {% endif %}\nBye"
    assert text(source, name="Bob") == "Hi Bob\nWelcome back\nBye"
    assert text(source, name="Ann") == "Hi Ann\nBye"


def test_the_default_variant_serves_types_without_their_own() -> None:
    welcome = template(NAME, default={"text": "Hi {{ name }}"}, sms={"text": "SMS {{ name }}"})
    for channel_type in ("telegram", "chat", "sandbox", "whatsapp", "email"):
        content, subject = render(welcome, channel_type, {"name": "Bob"})
        assert (content, subject) == ({"type": "text", "text": "Hi Bob"}, None)
    assert render(welcome, "sms", {"name": "Bob"})[0]["text"] == "SMS Bob"


def test_a_type_without_its_variant_or_a_default_is_refused() -> None:
    sms_only = template(NAME, sms={"text": "Hi {{ name }}"})
    error = refused(render, sms_only, "email", {"name": "Bob"})
    assert error.code == "TEMPLATE_VARIANT_MISSING"
    assert error.errors[0].field == "content.template"


def test_push_renders_a_title_and_a_body() -> None:
    alert = template(NAME, push={"title": "For\n{{ name }}", "text": "Body {{ name }}"})
    assert render(alert, "push", {"name": "Bob"}) == (
        {"type": "push", "title": "For Bob", "body": "Body Bob", "data": {}},
        None,
    )
    titled = template(NAME, push={"title": "Only {{ name }}"})
    assert render(titled, "push", {"name": "Bob"})[0] == {
        "type": "push",
        "title": "Only Bob",
        "data": {},
    }


WHATSAPP = {
    "text": "Your code is {{ code }}",
    "whatsapp_template": {"name": "otp_code", "language": "en_US", "parameters": ["code"]},
}
CODE = [{"name": "code", "type": "number"}]


def test_whatsapp_sends_the_approved_template_outside_the_window_and_text_inside() -> None:
    otp = template(CODE, whatsapp=WHATSAPP)
    outside, _ = render(otp, "whatsapp", {"code": 1234}, in_window=False)
    assert outside == {
        "type": "template",
        "template": "otp_code",
        "language": "en_US",
        "data": {"parameters": ["1234"]},
    }
    for window in (True, None):
        inside, _ = render(otp, "whatsapp", {"code": 1234}, in_window=window)
        assert inside == {"type": "text", "text": "Your code is 1234"}


def test_a_whatsapp_variant_with_only_a_template_always_sends_it_in_the_language_asked() -> None:
    only = template(CODE, whatsapp={"whatsapp_template": WHATSAPP["whatsapp_template"]})
    content, _ = render(only, "whatsapp", {"code": 7}, in_window=True, language="pt_BR")
    assert content["type"] == "template" and content["language"] == "pt_BR"
    error = refused(render, only, "whatsapp", {"code": 7}, language="portuguese")
    assert error.errors[0].field == "content.language"


# ---------------------------------------------------------------------------
# The data a message gives
# ---------------------------------------------------------------------------

TYPED: list[dict[str, Any]] = [
    {"name": "name"},
    {"name": "count", "type": "number"},
    {"name": "vip", "type": "boolean", "required": False},
    {"name": "order", "type": "any", "required": False},
]
SUMMARY = "{{ name }}: {{ count }}{% if vip %} (VIP){% endif %}{{ order }}"


def test_a_missing_required_variable_is_refused_naming_its_field() -> None:
    summary = template(TYPED, default={"text": SUMMARY})
    error = refused(render, summary, "sms", {"count": 1})
    assert error.code == "TEMPLATE_VARIABLE_MISSING"
    assert [e.field for e in error.errors] == ["content.data.name"]
    assert refused(render, summary, "sms", {"name": None, "count": 1}).code == (
        "TEMPLATE_VARIABLE_MISSING"
    )


def test_an_undeclared_key_and_a_wrong_type_are_refused() -> None:
    summary = template(TYPED, default={"text": SUMMARY})
    unknown = refused(render, summary, "sms", {"name": "a", "count": 1, "extra": 1})
    assert unknown.code == "TEMPLATE_VARIABLE_UNKNOWN"
    assert [e.field for e in unknown.errors] == ["content.data.extra"]
    for bad in ({"count": "1"}, {"count": True}, {"vip": "yes"}, {"name": 5}):
        error = refused(render, summary, "sms", {"name": "a", "count": 1, **bad})
        assert error.code == "TEMPLATE_VARIABLE_INVALID", bad
    assert refused(render, summary, "sms", ["not", "an", "object"]).errors[0].field == (
        "content.data"
    )


def test_missing_optional_variables_render_as_nothing() -> None:
    summary = template(TYPED, default={"text": SUMMARY})
    content, _ = render(summary, "sms", {"name": "Bob", "count": 2.5, "vip": True})
    assert content["text"] == "Bob: 2.5 (VIP)"
    content, _ = render(summary, "sms", {"name": "Bob", "count": 2, "order": None})
    assert content["text"] == "Bob: 2"


def test_nested_data_is_reachable_and_a_missing_attribute_fails_the_render() -> None:
    assert text("{{ order.lines[0].sku }}", order={"lines": [{"sku": "A-1"}]}) == "A-1"
    error = refused(text, "{{ order.nope }}", order={})
    assert error.code == "TEMPLATE_RENDER_FAILED"
    assert "has no attribute 'nope'" in error.detail and "Traceback" not in error.detail


def test_a_text_that_renders_empty_is_refused() -> None:
    quiet = template([{"name": "x", "required": False}], default={"text": "{{ x }}"})
    assert refused(render, quiet, "sms", {}).code == "TEMPLATE_RENDER_FAILED"


# ---------------------------------------------------------------------------
# Checks when a template is kept
# ---------------------------------------------------------------------------


def test_a_syntax_error_is_refused_with_its_field_and_line() -> None:
    error = refused_template(NAME, email={"html": "<p>\n{% if name %}</p>", "subject": "x"})
    assert error.code == "TEMPLATE_INVALID"
    [problem] = error.errors
    assert problem.field == "variants.email.html" and problem.message.startswith("line 2:")


def test_an_unknown_filter_is_refused_when_kept() -> None:
    error = refused_template(NAME, default={"text": "{{ name|shout }}"})
    assert error.code == "TEMPLATE_INVALID" and "shout" in error.errors[0].message


def test_every_variable_a_source_uses_must_be_declared() -> None:
    error = refused_template(NAME, default={"text": "{{ name }} {{ tier }} {{ when }}"})
    assert error.code == "TEMPLATE_VARIABLE_UNDECLARED"
    assert [(e.field, e.message) for e in error.errors] == [
        ("variants.default.text", "undeclared: tier, when")
    ]
    # names a template sets itself, loop variables and the globals it may call are not
    template(
        NAME,
        default={
            "text": "{% set x = 1 %}{% for i in range(2) %}{{ i }}{{ loop.index }}{% endfor %}"
        },
    )


def test_whatsapp_template_parameters_must_be_declared() -> None:
    error = refused_template(NAME, whatsapp=WHATSAPP)
    assert error.code == "TEMPLATE_VARIABLE_UNDECLARED"
    assert {e.field for e in error.errors} == {
        "variants.whatsapp.text",
        "variants.whatsapp.whatsapp_template.parameters.0",
    }


def test_a_variant_carries_only_what_its_channel_type_uses() -> None:
    error = refused_template(
        NAME,
        sms={"text": "x", "html": "<p>x</p>"},
        push={"subject": "s"},
        email={"subject": "only a subject"},
        telegram={"text": "x", "whatsapp_template": WHATSAPP["whatsapp_template"]},
        default={"html": "<p>x</p>"},
    )
    assert error.code == "TEMPLATE_INVALID"
    assert {e.field for e in error.errors} == {
        "variants.sms.html",
        "variants.push.subject",
        "variants.push",
        "variants.email",
        "variants.telegram.whatsapp_template",
        "variants.default",
    }


def test_variables_are_declared_once_and_not_under_reserved_names() -> None:
    error = refused_template([{"name": "a"}, {"name": "a"}, {"name": "loop"}], sms={"text": "x"})
    assert [e.field for e in error.errors] == ["variables.1.name", "variables.2.name"]


# ---------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ name.__class__ }}",
        "{{ name.format(1) }}",
        "{{ name.ljust(10) }}",
        "{% macro m() %}x{% endmacro %}{{ m() }}",
        "{% set x %}{{ name }}{% endset %}",
        "{% filter upper %}x{% endfilter %}",
        "{% for i in [1] recursive %}{% endfor %}",
        "{% include 'other' %}",
    ],
)
def test_escapes_and_unbounded_constructs_are_refused_when_kept(source: str) -> None:
    error = refused_template(NAME, default={"text": source})
    assert error.code == "TEMPLATE_INVALID", error.errors


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("{{ x[k] }}", {"x": "", "k": "__class__"}),
        ("{{ x|attr(k) }}", {"x": "", "k": "__globals__"}),
        ("{{ x[k](1) }}", {"x": "{}", "k": "format"}),
        ("{{ (x|attr(k))() }}", {"x": {}, "k": "clear"}),
        ("{{ x[k][k2] }}", {"x": {}, "k": "__init__", "k2": "__globals__"}),
    ],
)
def test_escapes_through_the_data_fail_the_render_safely(source: str, data: Any) -> None:
    error = refused(text, source, **data)
    assert error.code == "TEMPLATE_RENDER_FAILED"
    assert "Traceback" not in error.detail


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 1000000000 }}",
        "{{ 'a'|center(1000000000) }}",
        "{{ '%1000000000s' % 'a' }}",
        "{{ '%*s'|format(1000000000, 'a') }}",
        "{{ 'x'|indent(1000000000) }}",
        "{{ [1]|batch(1000000000, 0)|list }}",
        "{{ 2 ** 100000000 }}",
        "{{ ([s] * 100)|join }}",
        "{{ s|replace('', s) }}",
        "{% set a = s ~ s %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}",
        "{{ [s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s] }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}{{ s|upper|length }}{% endfor %}",
        "{% for i in range(100000) %}{% if -1 in xs %}{% endif %}{% endfor %}",
        "{% for i in range(100000) %}{% if xs is in [xs[1:]] %}{% endif %}{% endfor %}",
        "{% for i in range(100000) %}{{ xs|sort|length }}{% endfor %}",
        "{{ (10 ** 4000) * (10 ** 4000) }}",
    ],
)
def test_nothing_runs_when_compiled_and_what_a_render_builds_is_bounded(source: str) -> None:
    started = time.monotonic()
    optional = [{"name": name, "type": "any", "required": False} for name in ("s", "xs")]
    kept = template(optional, default={"text": source})
    assert time.monotonic() - started < 0.5  # nothing ran at compile time
    data = {"s": "x" * (MAX_VALUE // 10), "xs": list(range(20_000))}
    error = refused(render, kept, "sms", data)
    assert error.code == "TEMPLATE_RENDER_FAILED"
    assert time.monotonic() - started < 2


def test_output_is_capped_per_field() -> None:
    long = template([], default={"text": "{% for i in range(10000) %}0123456789{% endfor %}"})
    error = refused(render, long, "sms", {})
    assert error.code == "TEMPLATE_RENDER_FAILED" and "longer than 65536" in error.detail
    short = template([], push={"text": "{% for i in range(500) %}0123456789{% endfor %}"})
    assert "longer than 4096" in refused(render, short, "push", {}).detail


def test_a_large_ordinary_email_renders_well_within_the_budget() -> None:
    order = template(
        [{"name": "intro"}, {"name": "items", "type": "any"}],
        email={
            "subject": "Your order of {{ items|length }} items",
            "html": "{{ intro|safe }}<table>{% for item in items %}<tr class="
            "'{{ loop.cycle('odd', 'even') }}'><td>{{ loop.index }}</td><td>{{ item.name|e }}"
            "</td><td>{{ item.sku|upper }}</td><td>{{ '%.2f'|format(item.price * item.qty) }}"
            "</td>{% if item.note %}<td>{{ item.note|truncate(40) }}</td>{% endif %}</tr>"
            "{% endfor %}</table><p>{{ '%.2f'|format(items|sum(attribute='price')) }}</p>",
            "text": "{% for item in items %}{{ item.name }} x{{ item.qty }}\n{% endfor %}",
        },
    )
    items = [
        {"name": f"Product {i}", "sku": f"sku-{i}", "price": i + 0.5, "qty": 2, "note": "gift"}
        for i in range(500)
    ]
    intro = "<p>" + "Thank you for shopping with us. " * 2500 + "</p>"
    content, subject = render(order, "email", {"intro": intro, "items": items})
    assert subject == "Your order of 500 items" and len(content["html"]) > 100_000


def test_ordinary_jinja_still_works() -> None:
    source = (
        "{% for item in items %}{{ loop.index }}. {{ item.name|title }} "
        "{{ '%.2f'|format(item.price) }}{{ loop.cycle(',', ';') }}{% endfor %} "
        "{{ items|map(attribute='price')|sum }} {{ items|length }} {{ 'ab' * 2 }} "
        "{{ (items|first).name.upper() }} {{ d.items()|list }} {{ 2 ** 10 }} {{ 'x' ~ 1 }}"
    )
    items = [{"name": "tea", "price": 2}, {"name": "cake", "price": 3.5}]
    assert text(source, items=items, d={"k": 1}) == (
        "1. Tea 2.00,2. Cake 3.50; 5.5 2 abab TEA [('k', 1)] 1024 x1"
    )


# ---------------------------------------------------------------------------
# The service: kept per tenant, looked up once per batch
# ---------------------------------------------------------------------------

CONTENT = {"type": "template", "template": "welcome", "data": {"name": "Bob"}}


async def create(world: World, name: str = "welcome", text: str = "Hi {{ name }}") -> Any:
    data = TemplateCreate.model_validate(
        {"name": name, "variables": NAME, "variants": {"default": {"text": text}}}
    )
    return await templates.create_template(world.deps, world.tenant_id, data)


async def test_a_template_name_is_unique_within_a_tenant(world: World) -> None:
    doc = await create(world)
    assert doc["id"].startswith("tpl_")
    with pytest.raises(ConflictError) as caught:
        await create(world, text="other")
    assert caught.value.code == "TEMPLATE_NAME_TAKEN"


async def test_a_message_renders_its_template_for_the_channel_type(world: World) -> None:
    await create(world)
    rendered = await templates.render_content(world.deps, world.tenant_id, CONTENT, "sms")
    assert rendered == ({"type": "text", "text": "Hi Bob"}, None)


async def test_a_message_naming_a_missing_or_another_tenants_template_is_bad_input(
    world: World,
) -> None:
    globex = (await signup.create_tenant(world.deps, "globex")).tenant["id"]
    await create(world)
    for tenant_id, content in (
        (world.tenant_id, {**CONTENT, "template": "nope"}),
        (globex, CONTENT),
    ):
        with pytest.raises(ValidationFailed) as caught:
            await templates.render_content(world.deps, tenant_id, content, "sms")
        assert caught.value.code == "TEMPLATE_NOT_FOUND"
        assert caught.value.errors[0].field == "content.template"
    assert not await templates.exists(world.deps, globex, "welcome")


async def test_sends_read_the_template_from_the_cache_which_its_writes_refresh(
    world: World,
) -> None:
    doc = await create(world)
    deps, tenant_id = world.deps, world.tenant_id
    await templates.render_content(deps, tenant_id, CONTENT, "sms")
    # A change that bypasses the service (another instance) is not seen yet: one read
    # serves a whole batch.
    behind = {"variants": {"default": {"text": "Changed elsewhere"}}}
    await deps.store.patch(TEMPLATES, tenant_id, doc["id"], behind)
    assert (await templates.render_content(deps, tenant_id, CONTENT, "sms"))[0]["text"] == "Hi Bob"
    # ... while this instance's own writes are seen at once.
    update = TemplateUpdate.model_validate({"variants": {"sms": {"text": "Hey {{ name }}"}}})
    await templates.update_template(deps, tenant_id, "welcome", update)
    assert (await templates.render_content(deps, tenant_id, CONTENT, "sms"))[0]["text"] == (
        "Hey Bob"
    )
    await templates.delete_template(deps, tenant_id, "welcome")
    assert not await templates.exists(deps, tenant_id, "welcome")


async def test_an_update_is_checked_like_a_create(world: World) -> None:
    await create(world)
    emptied = TemplateUpdate.model_validate({"variants": {"default": None}})
    with pytest.raises(ValidationFailed) as caught:
        await templates.update_template(world.deps, world.tenant_id, "welcome", emptied)
    assert caught.value.code == "TEMPLATE_INVALID"
    narrowed = TemplateUpdate.model_validate({"variables": []})
    with pytest.raises(ValidationFailed) as caught:
        await templates.update_template(world.deps, world.tenant_id, "welcome", narrowed)
    assert caught.value.code == "TEMPLATE_VARIABLE_UNDECLARED"
