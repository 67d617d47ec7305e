"""Retries for provider calls: exponential backoff with jitter, honouring `retry-after`.

The SDKs' own retries are turned off (max_retries=0) so that every retry goes through here:
logged, reported to `on_retry`, and bounded by the model's settings. What is retried:
429, 408, 409, 5xx (529 overloaded included), an error event in the middle of a stream,
timeouts and dropped connections. 401/403 raise ModelAuthError at once, naming the variable
to set; other 4xx raise ModelError at once (retrying a bad request does not fix it).

Also shared by both providers: `parse_arguments`, which turns a tool call's JSON text into
arguments or an error the model is shown.
"""

from __future__ import annotations

import email.utils
import importlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent.config import ProviderConfig
from agent.models.base import ModelAuthError, ModelError

log = logging.getLogger("agent.models")
T = TypeVar("T")

RETRY_STATUS = {408, 409, 425, 429}
AUTH_STATUS = {401, 403}
RETRY_AFTER_CAP_S = 600.0  # a server asking for more than this is not waited for longer
AUTH_ERROR_TYPES = {"authentication_error", "permission_error"}
FATAL_ERROR_TYPES = {"invalid_request_error", "not_found_error", "request_too_large"}


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Timeouts and broken connections raised by the HTTP library while reading a stream."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()


def retry_after_s(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` / `retry-after` (seconds or an HTTP date), if any."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return None


def _error_type(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("type") or "")
        return str(body.get("type") or "")
    return ""


@dataclass
class Retrier:
    """Runs a provider call until it succeeds, a fatal error, or `max_retries` retries.

    `status_errors` / `connection_errors` are the SDK's exception classes (each SDK has its
    own); `key_var` names the variable to set when the credentials are refused; `config`
    holds the policy (max_retries, base_delay_s, max_delay_s).
    """

    name: str
    key_var: str
    status_errors: tuple[type[BaseException], ...]
    connection_errors: tuple[type[BaseException], ...]
    config: ProviderConfig = field(default_factory=ProviderConfig)
    on_retry: Callable[[dict], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    retries: int = 0  # over the life of this object (one episode), for the record

    def classify(self, exc: BaseException) -> tuple[str, str, float | None]:
        """(retry | auth | fatal, what happened, retry-after seconds)."""
        if isinstance(exc, self.status_errors):
            status = int(getattr(exc, "status_code", 0) or 0)
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
            what = f"HTTP {status}: {str(exc)[:300]}" if status >= 400 else \
                f"error event in the stream: {str(exc)[:300]}"
            kind = _error_type(getattr(exc, "body", None))
            if status in AUTH_STATUS or kind in AUTH_ERROR_TYPES:
                return "auth", what, None
            if status in RETRY_STATUS or status >= 500:
                return "retry", what, retry_after_s(headers)
            if status < 400:  # an error event in the middle of a 200 stream
                return ("fatal" if kind in FATAL_ERROR_TYPES else "retry"), what, None
            return "fatal", what, None
        if isinstance(exc, self.connection_errors + TRANSPORT_ERRORS):
            return "retry", f"{type(exc).__name__}: {str(exc)[:300] or 'connection failed'}", None
        raise exc  # not a provider error: a bug, let it surface

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_CAP_S)
        backoff = min(self.config.max_delay_s, self.config.base_delay_s * 2 ** attempt)
        return backoff * self.rng.uniform(0.5, 1.0)

    def run(self, call: Callable[[], T]) -> T:
        attempt, start = 0, time.monotonic()
        while True:
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - classify() re-raises what is not ours
                kind, what, retry_after = self.classify(exc)
                if kind == "auth":
                    raise ModelAuthError(
                        f"{self.name}: the API refused the credentials ({what}). Set "
                        f"{self.key_var} to a valid key.") from exc
                if kind == "fatal":
                    raise ModelError(f"{self.name}: {what}") from exc
                if attempt >= self.config.max_retries:
                    raise ModelError(
                        f"{self.name}: gave up after {attempt + 1} attempts in "
                        f"{time.monotonic() - start:.1f}s; last error: {what}") from exc
                wait = self.delay(attempt, retry_after)
                attempt += 1
                self.retries += 1
                log.warning("%s: %s; retry %d/%d in %.2fs", self.name, what, attempt,
                            self.config.max_retries, wait)
                if self.on_retry is not None:
                    self.on_retry({"model": self.name, "attempt": attempt, "error": what,
                                   "delay_s": round(wait, 3)})
                self.sleep(wait)


def provider_config(config: ProviderConfig | None, overrides: dict[str, Any]) -> ProviderConfig:
    """`config` (ProviderConfig's defaults when None) with `overrides` of its fields applied,
    validated: a misspelt setting raises instead of being ignored."""
    base = config.model_dump() if config is not None else {}
    return ProviderConfig.model_validate({**base, **overrides})


def parse_arguments(raw: str, cut: bool) -> tuple[dict[str, Any], str]:
    """(arguments, error) from the JSON text of a tool call. The error says what was wrong,
    without a closing period: the episode adds what to do next."""
    if not raw.strip():
        return {}, ""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        if cut:
            return {}, ("the reply was cut off by the output token limit (max_tokens) while "
                        "this call's arguments were being written, so nothing was run; make "
                        "smaller steps (shorter edits, one call at a time)")
        return {}, (f"arguments were not valid JSON ({e.msg}, at character {e.pos}): "
                    f"{raw[:200]!r}")
    if not isinstance(value, dict):
        return {}, f"arguments must be a JSON object, got {type(value).__name__}: {raw[:200]!r}"
    return value, ""
