"""Source adapters as an integration configures them: its `source_options` per source slug.

An adapter may take constructor parameters (the Alertmanager adapter: `severity_label`,
`tenant_labels`). `configured_source` builds the adapter anew with an integration's options and
keeps a few such builds, so a webhook does not construct its adapter on every call.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar, cast

from connector.errors import ConfigError
from connector.services import SourceAdapter

S = TypeVar("S", bound=SourceAdapter)

#: How many configured adapters are kept; the least recently used one goes first.
CACHE_SIZE = 64

_cache: OrderedDict[Hashable, SourceAdapter] = OrderedDict()
_lock = threading.Lock()


def configured_source(adapter: S, options: Mapping[str, Any]) -> S:
    """`adapter` built with `options` as its constructor's keyword arguments.

    That is `type(adapter)(**options)`; with no options, `adapter` itself. Builds are cached by
    (slug, adapter class, options). Options the constructor does not take, or values it refuses,
    raise ConfigError naming the source, the problem and the parameters it does take.
    """
    if not options:
        return adapter
    cls = type(adapter)
    key = _key(adapter.slug, cls, options)
    if key is not None:
        with _lock:
            found = _cache.get(key)
            if found is not None:
                _cache.move_to_end(key)
                return cast(S, found)
    build = cast(Callable[..., S], cls)
    try:
        configured = build(**options)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"source_options for source {adapter.slug!r} ({', '.join(sorted(options))}) are not"
            f" accepted by its adapter ({cls.__name__}): {e}. It takes: {_parameters(cls)}.",
            details={"source_options": {adapter.slug: [str(e)]}},
        ) from e
    if key is not None:
        with _lock:
            _cache[key] = configured
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return configured


def clear_cache() -> None:
    """Forget every configured adapter (tests, or after adapters are re-registered)."""
    with _lock:
        _cache.clear()


def _parameters(cls: type) -> str:
    """The keyword parameters `cls`'s constructor takes, for the error message."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return "unknown parameters"
    names = [
        name
        for name, parameter in signature.parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    ]
    return ", ".join(names) if names else "no options"


def _key(slug: str, cls: type, options: Mapping[str, Any]) -> Hashable | None:
    """A hashable key for the cache; None (no caching) for options that cannot be frozen."""
    key = (slug, cls, _freeze(options))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _freeze(value: Any) -> Any:
    """`value` with its maps and lists made immutable, so equal options give equal keys."""
    # Tagged, so that a map and a list of pairs never give the same key.
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        # A list and a tuple of the same items configure the adapter alike.
        return ("sequence", tuple(_freeze(item) for item in value))
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(item) for item in value)
    return value


def check_source_options(
    options: Mapping[str, Mapping[str, Any]], adapters: Mapping[str, SourceAdapter]
) -> None:
    """Build every configured adapter once, so bad `source_options` stop the start, not a hook."""
    unknown = sorted(set(options) - set(adapters))
    if unknown:
        raise ConfigError(
            f"source_options names unknown sources {', '.join(map(repr, unknown))};"
            f" known: {', '.join(sorted(adapters))}",
            details={"source_options": {slug: ["unknown source"] for slug in unknown}},
        )
    for slug, given in options.items():
        configured_source(adapters[slug], given)
