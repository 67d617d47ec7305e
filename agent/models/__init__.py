"""Model specs -> Model instances (one per episode), and weighted mixes of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.config import RunConfig
from agent.models.base import Model


class ModelSpecError(ValueError):
    pass


@dataclass
class ModelChoice:
    spec: str
    weight: float


def parse_specs(specs: list[str]) -> list[ModelChoice]:
    """`tuner`, `scripted:PATH`, `anthropic/NAME`, `openai/NAME[@URL]`, each with `:WEIGHT`."""
    choices = []
    for raw in specs:
        spec, weight = raw, 1.0
        head, sep, tail = raw.rpartition(":")
        host = head.split("://", 1)[1] if "://" in head else None
        is_port = host is not None and ":" not in host and "/" not in host  # @http://h:8000
        if sep and head and not is_port:
            try:
                weight = float(tail)
                spec = head
            except ValueError:
                pass
        if weight <= 0:
            raise ModelSpecError(f"model {raw!r}: weight must be positive")
        check_spec(spec)
        choices.append(ModelChoice(spec, weight))
    if not choices:
        raise ModelSpecError("no model given")
    return choices


USAGE = "use tuner, scripted:PATH, anthropic/NAME or openai/NAME[@http://HOST:PORT/v1]"


def check_spec(spec: str) -> None:
    """Raise ModelSpecError for a spec that no model could be made from."""
    kind = spec.split(":", 1)[0].split("/", 1)[0]
    if kind == "tuner":
        if spec != "tuner":
            raise ModelSpecError(f"model {spec!r}: the tuner takes no argument; {USAGE}")
    elif kind == "scripted":
        if not spec.startswith("scripted:") or not spec.split(":", 1)[1]:
            raise ModelSpecError("the scripted model needs a file: scripted:PATH.jsonl")
    elif kind in ("anthropic", "openai") and spec.startswith(kind + "/"):
        name, _, url = spec.split("/", 1)[1].partition("@")
        if not name.strip():
            raise ModelSpecError(f"model {spec!r} names no model; e.g. {kind}/"
                                 f"{DEFAULT_ANTHROPIC.split('/')[1] if kind == 'anthropic' else 'gpt-5'}")
        if "@" in spec and kind == "anthropic":
            raise ModelSpecError(f"model {spec!r}: a server URL is for openai/NAME@URL; for "
                                 "Anthropic set ANTHROPIC_BASE_URL")
        if "@" in spec and not _is_url(url):
            raise ModelSpecError(f"model {spec!r}: {url!r} is not a server URL; e.g. "
                                 "openai/qwen2.5-coder@http://127.0.0.1:8000/v1")
    else:
        raise ModelSpecError(f"unknown model {spec!r}; {USAGE}")


def _is_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_files(specs: list[str]) -> None:
    """Raise ModelSpecError for a scripted model whose file is missing (checked before a run
    starts; a resumed run may have lost it and says so when the episode starts)."""
    from pathlib import Path

    for choice in parse_specs(specs):
        if choice.spec.startswith("scripted:"):
            path = Path(choice.spec.split(":", 1)[1])
            if not path.is_file():
                raise ModelSpecError(f"model {choice.spec!r}: no such file {str(path)!r}")


def untrusted(specs: list[str]) -> bool:
    """Whether any model writes code nobody vouches for: every model but the built-in tuner,
    which only retunes constants and comparisons of the task's own code (a scripted file may
    hold anything, an LLM's transcript included)."""
    return any(c.spec != "tuner" for c in parse_specs(specs))


DEFAULT_ANTHROPIC = "anthropic/claude-sonnet-4-5"
DEFAULT_OPENAI = "openai/gpt-5"


def default_model(env: dict[str, str]) -> tuple[str, str]:
    """The model to use when none is given, and why (for one line of output)."""
    if env.get("ANTHROPIC_API_KEY"):
        return DEFAULT_ANTHROPIC, "ANTHROPIC_API_KEY is set"
    if env.get("OPENAI_API_KEY"):
        return DEFAULT_OPENAI, "OPENAI_API_KEY is set"
    return "tuner", "no ANTHROPIC_API_KEY or OPENAI_API_KEY is set; the built-in tuner needs none"


def make_model(spec: str, cfg: RunConfig, episode: int,
               on_retry: Callable[[dict], None] | None = None) -> Model:
    """A fresh model for one episode (an API model's SDK client is the run's, shared:
    agent/models/clients.py); on_retry hears of every retried API call."""
    if spec == "tuner":
        from agent.models.tuner import TunerModel
        return TunerModel(seed=cfg.seed * 1_000_003 + episode, config=cfg.tuner)
    if spec.startswith("scripted:"):
        from agent.models.scripted import ScriptedModel
        return ScriptedModel(spec.split(":", 1)[1], episode=episode)
    provider, _, name = spec.partition("/")
    if provider == "anthropic" and name:
        from agent.models.anthropic import AnthropicModel
        return AnthropicModel(name, cfg.provider, on_retry=on_retry)
    if provider == "openai" and name:
        from agent.models.openai import OpenAIModel
        model, _, base_url = name.partition("@")
        return OpenAIModel(model, cfg.provider, base_url=base_url or None, on_retry=on_retry)
    raise ModelSpecError(f"model {spec!r}: use tuner, scripted:PATH, anthropic/NAME or "
                         "openai/NAME[@URL]")
