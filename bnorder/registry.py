"""Plain-dict registries with one lookup rule: names are normalised (lower case, ``_`` and
spaces dropped) and an unknown name is a :class:`ConfigError` that suggests the closest one."""

from __future__ import annotations

from typing import TypeVar

from bnorder.errors import ConfigError

__all__ = ["aliases_of", "lookup", "normalise", "register"]

T = TypeVar("T")


def normalise(name: str) -> str:
    """``"Leaky_ReLU"`` -> ``"leakyrelu"``; ``"fashion-mnist"`` -> ``"fashionmnist"``."""
    return "".join(ch for ch in str(name).strip().lower() if ch not in "_- ")


def register(registry: dict[str, T], name: str, value: T, *, aliases: tuple[str, ...] = ()) -> T:
    """Add ``value`` under ``name`` and its aliases; a name already taken raises."""
    for key in (name, *aliases):
        norm = normalise(key)
        if norm in registry:
            raise ValueError(f"registry already has {key!r}; pick another name")
        registry[norm] = value
    return value


def lookup(
    registry: dict[str, T], name: str, *, field: str, kind: str, choices: tuple[str, ...]
) -> T:
    """``registry[normalise(name)]`` or a ConfigError naming ``field``, the ``kind`` of thing
    and the canonical ``choices``."""
    try:
        return registry[normalise(name)]
    except KeyError:
        raise ConfigError(
            field, name, f"unknown {kind}", choices=choices, aliases=aliases_of(registry, choices)
        ) from None


def aliases_of(registry: dict[str, T], choices: tuple[str, ...]) -> dict[str, str]:
    """Every registry key -> the canonical choice it stands for (for suggestions)."""
    canonical = {id(registry[normalise(c)]): c for c in choices if normalise(c) in registry}
    return {key: canonical[id(value)] for key, value in registry.items() if id(value) in canonical}
