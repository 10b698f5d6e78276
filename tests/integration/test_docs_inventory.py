"""What the code declares, named in the operators' docs (azure review C9: the docs
had six containers of sixteen, two queues of three, no webhook triggers).

docs/operations.md and infra/README.md must name every function of
``function_app.py``, every queue, topic and subscription the settings default to,
every Cosmos DB container, and what happens to each entity's dead letters; and they
must name no function, entity or container the code does not have.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import function_app
from ocm_cli.triggers import app_functions
from shared.config import Settings
from shared.containers import CONTAINERS

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
INFRA = ROOT / "infra" / "README.md"
SETTINGS = Settings()

FUNCTIONS = {fn.get_function_name() for fn in app_functions(function_app.app)}
QUEUES = {
    SETTINGS.OCM_OUTBOUND_QUEUE,
    SETTINGS.OCM_PROVIDER_EVENTS_QUEUE,
    SETTINGS.OCM_WEBHOOK_QUEUE,
}
TOPICS = {SETTINGS.OCM_EVENTS_TOPIC}
SUBSCRIPTIONS = {
    SETTINGS.OCM_EVENTS_LOG_SUBSCRIPTION,
    SETTINGS.OCM_WEBHOOKS_SUBSCRIPTION,
    SETTINGS.OCM_ANALYTICS_SUBSCRIPTION,
}
ENTITIES = QUEUES | TOPICS | SUBSCRIPTIONS
CONTAINER_NAMES = {c.name for c in CONTAINERS}


def named(text: str) -> set[str]:
    """Everything a doc writes as code (`…`)."""
    return set(re.findall(r"`([^`\n]+)`", text))


def missing(doc: Path, wanted: set[str]) -> set[str]:
    return wanted - named(doc.read_text())


@pytest.mark.parametrize("doc", [OPERATIONS, INFRA], ids=lambda p: p.name)
def test_every_entity_and_container_is_named(doc: Path) -> None:
    assert missing(doc, ENTITIES) == set(), "name these Service Bus entities"
    assert missing(doc, CONTAINER_NAMES) == set(), "name these Cosmos DB containers"


def test_every_function_and_what_it_does_with_dead_letters_is_in_operations() -> None:
    text = OPERATIONS.read_text()
    assert missing(OPERATIONS, FUNCTIONS) == set(), "add these functions to the table"
    table = text[text.index("### Triggers, entities and dead letters") :]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    by_function = {re.match(r"\| `(\w+)`", row)[1]: row for row in rows}  # type: ignore[index]
    for name, row in by_function.items():
        assert name in FUNCTIONS, f"the table names {name}, which function_app.py lacks"
        queue_or_topic = [e for e in QUEUES | SUBSCRIPTIONS if f"`{e}`" in row]
        if queue_or_topic:
            # A Service Bus trigger: its dead letters have a handler, named in its row.
            handlers = [f for f in FUNCTIONS if f != name and f"`{f}`" in row]
            assert handlers, f"{name}: say what happens to its dead letters"
    in_table = {f for row in rows for f in FUNCTIONS if f"`{f}`" in row}
    assert FUNCTIONS - in_table == set(), "the table leaves these functions out"


@pytest.mark.parametrize("doc", [OPERATIONS, INFRA], ids=lambda p: p.name)
def test_the_docs_name_no_entity_or_container_the_code_lacks(doc: Path) -> None:
    text = doc.read_text()
    entities = {n for n in named(text) if re.fullmatch(r"ocm-[a-z-]+", n)}
    assert entities - ENTITIES == set(), "these entities do not exist"
    # A list of containers: "containers … : `a`, `b`, …" up to the end of its sentence.
    for listed in re.findall(r"containers[^:\n]*:([^.|]*)", text):
        assert named(listed) - CONTAINER_NAMES == set(), "these containers do not exist"


def test_each_entitys_dead_letter_handling_is_in_the_infra_readme() -> None:
    text = INFRA.read_text()
    section = text[text.index("- Dead letters:") :]
    section = section[: section.index("\n\n")]
    for entity in QUEUES | {f"{SETTINGS.OCM_EVENTS_TOPIC}/{s}" for s in SUBSCRIPTIONS}:
        assert f"`{entity}`" in section, f"say what happens to dead letters of {entity}"
