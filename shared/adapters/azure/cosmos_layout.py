"""How each container looks in Cosmos DB: partition key, unique keys, indexing, TTL.

One definition, derived from the ContainerSpecs, used by the adapter (and by test
set-ups that create containers) and mirrored by Terraform (infra/), which a test
compares against it: change one side alone and that test fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.ports import ContainerSpec

UNIQUE_PREFIX = "uq__"
"""Cosmos counts a missing unique value as one value (null), so two documents
without it would clash; the adapter stores each unique field again under this
prefix, with a value that is the field's when set and unique per document when not."""


def unique_property(field: str) -> str:
    return UNIQUE_PREFIX + field.replace(".", "__")


def _path(field: str) -> str:
    return "/" + "/".join(field.split("."))


@dataclass(frozen=True, slots=True)
class CosmosContainer:
    name: str
    partition_key_paths: tuple[str, ...]
    unique_key_paths: tuple[str, ...]
    indexing_policy: dict[str, Any]
    ordered_fields: tuple[str, ...]
    default_ttl: int = -1  # TTL on, per item: a document's own ``ttl`` decides

    @property
    def partition_key_kind(self) -> str:
        return "MultiHash" if len(self.partition_key_paths) > 1 else "Hash"

    def partition_key(self) -> dict[str, Any]:
        """The ``partition_key`` definition as azure-cosmos takes it."""
        return {
            "paths": list(self.partition_key_paths),
            "kind": self.partition_key_kind,
            "version": 2,  # hashes long key values in full; required by MultiHash
        }

    def unique_key_policy(self) -> dict[str, Any]:
        return {"uniqueKeys": [{"paths": [p]} for p in self.unique_key_paths]}


def layout(spec: ContainerSpec) -> CosmosContainer:
    """Index only what is queried: the tenant, the declared fields, and a composite
    (field, id) per field a list is ordered by (keyset pages order by both)."""
    ordered = tuple(f for f in dict.fromkeys(spec.ordered) if f != "id")
    queried = ("tenant_id", "id", *spec.indexed, *spec.swept, *ordered, *spec.sparse, *spec.unique)
    included = [{"path": f"{_path(f)}/?"} for f in dict.fromkeys(queried)]
    composites = [
        [{"path": _path(f), "order": "ascending"}, {"path": "/id", "order": "ascending"}]
        for f in ordered
    ]
    policy: dict[str, Any] = {
        "indexingMode": "consistent",
        "automatic": True,
        "includedPaths": included,
        # Cosmos DB adds /"_etag"/? itself (and infra/containers.tf leaves it out).
        "excludedPaths": [{"path": "/*"}],
        "compositeIndexes": composites,
    }
    return CosmosContainer(
        name=spec.name,
        partition_key_paths=tuple(f"/{f}" for f in spec.partition_key),
        unique_key_paths=tuple(f"/{unique_property(f)}" for f in spec.unique),
        indexing_policy=policy,
        ordered_fields=ordered,
    )
