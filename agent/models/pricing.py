"""Dollars per token: a price table per model, and `cost(model, usage)`.

Prices are USD per million tokens: (input, output, cache read, cache write), as of 2026,
from the providers' pricing pages (Anthropic: 5-minute cache writes; OpenAI charges nothing
extra to write its automatic prompt cache). `Usage.input_tokens` counts the input tokens
that were NOT read from or written to the cache (the Anthropic convention; the OpenAI
provider subtracts its cached tokens from `prompt_tokens` to match).

A model name matches its own row, else the longest row that prefixes it
(`claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`). Unknown models cost 0, with one
warning each. A run's config may add or change rows with `load_pricing`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, NamedTuple

from agent.models.base import Usage

log = logging.getLogger("agent.models.pricing")


class Price(NamedTuple):
    input: float
    output: float
    cache_read: float
    cache_write: float


DEFAULT_PRICES: dict[str, Price] = {
    # Anthropic, as of 2026 (platform.claude.com/docs/en/about-claude/pricing)
    "claude-fable-5": Price(10.0, 50.0, 1.0, 12.5),
    "claude-mythos-5": Price(10.0, 50.0, 1.0, 12.5),
    "claude-opus-5": Price(5.0, 25.0, 0.5, 6.25),
    "claude-opus-4-8": Price(5.0, 25.0, 0.5, 6.25),
    "claude-opus-4-7": Price(5.0, 25.0, 0.5, 6.25),
    "claude-opus-4-6": Price(5.0, 25.0, 0.5, 6.25),
    "claude-opus-4-5": Price(5.0, 25.0, 0.5, 6.25),
    "claude-opus-4-1": Price(15.0, 75.0, 1.5, 18.75),
    "claude-opus-4": Price(15.0, 75.0, 1.5, 18.75),
    "claude-sonnet-5": Price(2.0, 10.0, 0.2, 2.5),
    "claude-sonnet-4-6": Price(3.0, 15.0, 0.3, 3.75),
    "claude-sonnet-4-5": Price(3.0, 15.0, 0.3, 3.75),
    "claude-sonnet-4": Price(3.0, 15.0, 0.3, 3.75),
    "claude-3-7-sonnet": Price(3.0, 15.0, 0.3, 3.75),
    "claude-haiku-4-5": Price(1.0, 5.0, 0.1, 1.25),
    "claude-3-5-haiku": Price(0.8, 4.0, 0.08, 1.0),
    # OpenAI, as of 2026 (openai.com/api/pricing); cached input = cache read
    "gpt-5.5": Price(5.0, 30.0, 0.5, 0.0),
    "gpt-5.4": Price(2.5, 15.0, 0.25, 0.0),
    "gpt-5.4-mini": Price(0.75, 4.5, 0.075, 0.0),
    "gpt-5.4-nano": Price(0.2, 1.25, 0.02, 0.0),
    "gpt-5.1": Price(1.25, 10.0, 0.125, 0.0),
    "gpt-5": Price(1.25, 10.0, 0.125, 0.0),
    "gpt-5-mini": Price(0.25, 2.0, 0.025, 0.0),
    "gpt-5-nano": Price(0.05, 0.4, 0.005, 0.0),
    "gpt-4.1": Price(2.0, 8.0, 0.5, 0.0),
    "gpt-4.1-mini": Price(0.4, 1.6, 0.1, 0.0),
    "gpt-4.1-nano": Price(0.1, 0.4, 0.025, 0.0),
    "gpt-4o": Price(2.5, 10.0, 1.25, 0.0),
    "gpt-4o-mini": Price(0.15, 0.6, 0.075, 0.0),
    "o3": Price(2.0, 8.0, 0.5, 0.0),
    "o4-mini": Price(1.1, 4.4, 0.275, 0.0),
}

PRICES: dict[str, Price] = dict(DEFAULT_PRICES)
_warned: set[str] = set()
_lock = threading.Lock()


def bare_name(model: str) -> str:
    """`anthropic/claude-x`, `openai/gpt-x@http://...` -> `claude-x`, `gpt-x`."""
    name = model.split("@", 1)[0]
    return name.split("/", 1)[1] if "/" in name else name


def price(model: str) -> Price | None:
    """The row for `model` (exact, else the longest prefix), or None if there is none."""
    name = bare_name(model)
    if name in PRICES:
        return PRICES[name]
    prefixes = [k for k in PRICES if name.startswith(k + "-")]
    return PRICES[max(prefixes, key=len)] if prefixes else None


def cost(model: str, usage: Usage) -> float:
    """Dollars for `usage` on `model`; 0 (and one warning) for a model with no price."""
    p = price(model)
    if p is None:
        with _lock:
            if model not in _warned:
                _warned.add(model)
                log.warning("no price for model %r: its tokens are counted at $0 (add it "
                            "with a pricing override in the run config)", model)
        return 0.0
    return (usage.input_tokens * p.input + usage.output_tokens * p.output
            + usage.cache_read_tokens * p.cache_read
            + usage.cache_write_tokens * p.cache_write) / 1e6


def load_pricing(overrides: dict[str, Any] | None) -> dict[str, Price]:
    """Add or replace rows: {model: {"input", "output", "cache_read", "cache_write"}} (missing
    keys keep the model's current price, or 0) or {model: [input, output, read, write]}."""
    for model, row in (overrides or {}).items():
        name = bare_name(model)
        old = PRICES.get(name, Price(0.0, 0.0, 0.0, 0.0))
        if isinstance(row, dict):
            unknown = set(row) - set(Price._fields)
            if unknown:
                raise ValueError(f"pricing for {model!r}: unknown keys {sorted(unknown)}; "
                                 f"use {list(Price._fields)} (USD per million tokens)")
            new = old._replace(**{k: float(v) for k, v in row.items()})
        elif isinstance(row, (list, tuple)) and len(row) == 4:
            new = Price(*(float(v) for v in row))
        else:
            raise ValueError(f"pricing for {model!r}: give {{input, output, cache_read, "
                             f"cache_write}} or a list of 4 numbers, got {row!r}")
        if any(v < 0 for v in new):
            raise ValueError(f"pricing for {model!r}: prices must be >= 0, got {new}")
        PRICES[name] = new
        _warned.discard(model)
    return PRICES


def reset_pricing() -> None:
    """Back to the built-in table (tests)."""
    PRICES.clear()
    PRICES.update(DEFAULT_PRICES)
    _warned.clear()
