"""One SDK client per provider settings for the whole run, shared by every episode.

Building an `openai.OpenAI` or `anthropic.Anthropic` client costs ~50 ms (httpx makes an SSL
context and loads the CA bundle, even for http://) and a new one opens new connections; the
SDK clients are thread-safe, so episodes (and their worker threads) share one per key: the
provider, the constructor's arguments and the provider's environment variables the SDK reads
(a changed key or base URL gets a client of its own).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


def shared(provider: str, kwargs: dict[str, Any], make: Callable[..., T]) -> T:
    """The client `make(**kwargs)` made once for these settings, or made now."""
    prefix = provider.upper() + "_"
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(prefix)))
    key = (provider, tuple(sorted((k, repr(v)) for k, v in kwargs.items())), env)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = make(**kwargs)
        return client


def count() -> int:
    """How many clients are alive (for tests)."""
    with _lock:
        return len(_clients)
