"""Provider modules: one per provider, each defining ``PROVIDER`` (a ProviderModule).

Adding a provider is adding a module here (and its page under docs/providers/):
``discover`` finds every module of this package that defines ``PROVIDER``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from shared.ports import ProviderModule


@lru_cache(maxsize=1)
def discover() -> tuple[ProviderModule, ...]:
    """Every provider module of this package, by name."""
    found: list[ProviderModule] = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        provider = getattr(module, "PROVIDER", None)
        if isinstance(provider, ProviderModule):
            found.append(provider)
    return tuple(sorted(found, key=lambda p: p.name))
