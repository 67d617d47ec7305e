"""Run configuration: the ONE place defaults live. Docs, CLI help and the TUI read them here."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class EpisodeLimits(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    max_steps: int = 40
    """Model turns per episode before it is stopped."""
    wall_s: float = 900.0
    """Wall-clock seconds per episode."""
    max_output_chars: int = 12000
    """Longest tool result handed back to the model (head and tail are kept)."""
    context_chars: int = 200_000
    """Conversation size past which the oldest tool results are shortened."""


class ProviderConfig(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    max_tokens: int = Field(16000, gt=0)
    """Output tokens per turn of an Anthropic model, thinking included (OpenAI and compatible
    servers use their own default)."""
    thinking: int | Literal["adaptive"] = 0
    """Extended thinking for Anthropic models: a budget in tokens (0: off) or "adaptive"."""
    max_retries: int = Field(6, ge=0)
    """Retries of a failed API call (429, 5xx, 529, timeouts, dropped connections)."""
    base_delay_s: float = Field(1.0, ge=0)
    """First backoff delay; it doubles per retry, with jitter, capped by max_delay_s."""
    max_delay_s: float = Field(60.0, ge=0)
    """Longest backoff delay (a server's retry-after is honoured up to this)."""
    timeout_s: float = Field(300.0, gt=0)
    """Seconds one API call may take."""
    stream: bool = True
    """Stream replies from OpenAI(-compatible) servers (the timeout then applies to each
    piece); false asks for one JSON reply per call. Anthropic models always stream."""


class SearchConfig(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    islands: int = 3
    """Independent sub-populations; episodes rotate over them."""
    migration_every: int = 10
    """Copy each island's best into the next island every this many candidates."""
    exploit_ratio: float = 0.7
    """Share of episodes that start from an elite; the rest start from a diverse candidate."""
    elite_size: int = 5
    """How many of an island's best are elites."""
    inspirations: int = 3
    """Strong and diverse candidates shown to the model besides the parent."""
    failures: int = 2
    """Recent failures (invalid or worse than their parent) shown with their feedback."""


class TunerConfig(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    trials: int = 6
    """Mutations the tuner tries per episode."""
    max_commits: int = 3
    """Improvements the tuner commits per episode before it finishes."""


class RunConfig(BaseModel):
    """Everything a run needs; saved as session.toml and read back by `resume`."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    task_dir: str
    """The task folder (holds task.toml)."""
    models: list[str] = Field(default_factory=list)
    """Model specs: tuner, scripted:PATH, anthropic/NAME, openai/NAME[@URL]; SPEC:WEIGHT mixes.
    Empty: a Claude model with ANTHROPIC_API_KEY set, else an OpenAI one with OPENAI_API_KEY,
    else the built-in tuner."""
    bandit: bool = False
    """Pick each episode's model by UCB on improvement per dollar instead of fixed weights."""
    max_cost_usd: float = Field(0.0, ge=0)
    """Stop starting episodes once the run has cost this much (0: no cap)."""
    pricing: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Price overrides per model: {input, output, cache_read, cache_write} in $ per million tokens."""
    budget: int = Field(40, ge=0)
    """Candidates (scored commits) the run may make, the baseline not counted."""
    max_episodes: int = Field(0, ge=0)
    """Episodes the run may start; 0 means twice the budget."""
    workers: int = Field(1, ge=1)
    """Episodes run at once, each in its own worktree."""
    evaluators: int = Field(0, ge=0)
    """Evaluations run at once, shared by every episode (0: one per core here; with the ray
    backend, the cluster's CPUs decide)."""
    backend: Literal["local", "ray"] = "local"
    """Where evaluations run: this machine, or a Ray cluster (`pip install -e '.[ray]'`)."""
    ray_address: str | None = None
    """The Ray cluster to use with the ray backend (none: start a local one)."""
    wall_s: float = Field(4 * 3600.0, gt=0)
    """Wall-clock seconds for the whole run; no new episode starts after it."""
    seed: int = 0
    """Seed for parent choice and the built-in models."""
    data_dir: str | None = None
    """Data folder handed to the evaluator ({data} in its command, ADRS_DATA), read-only."""
    test_at_end: bool = True
    """Score the best candidate (and the baseline) on the held-out test stage at the end."""
    sandbox: str = "auto"
    """Jail for candidate code and the agents' commands: auto (the task's choice, else bwrap
    where it works), bwrap, docker or process (no jail)."""
    unsafe_no_sandbox: bool = False
    """Let LLM-written code run without a jail (process backend). Never on a machine or
    account with anything to lose."""
    episode: EpisodeLimits = Field(default_factory=EpisodeLimits)
    search: SearchConfig = Field(default_factory=SearchConfig)
    tuner: TunerConfig = Field(default_factory=TunerConfig)
    provider: ProviderConfig = Field(default_factory=ProviderConfig)

    @property
    def episode_cap(self) -> int:
        return self.max_episodes or 2 * self.budget


SESSIONS_DIR = "sessions"
"""Where session folders go, under the current directory, unless --sessions-dir says else."""


# -- a run's settings from a file, the command line and --set ----------------------------------
FILE_RELATIVE = ("task_dir", "data_dir")
"""Settings naming folders: in a --config file, relative to the file's folder."""


class ConfigError(ValueError):
    """A --config file or a setting that cannot be used; the message is one line."""


def load(flags: dict[str, Any] | None = None, file: str | Path | None = None,
         sets: Sequence[str] = (), flag_names: dict[str, str] | None = None) -> RunConfig:
    """The run's settings: the defaults, then `file` (TOML), then the command line's `flags`
    (the ones given), then each `--set KEY=VALUE`, later ones winning; validated as a whole.
    `flag_names` name the flags in errors (default: --budget for budget)."""
    data: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}  # key path -> how to name it in an error
    if file is not None:
        label = f"--config {file}"
        layer = read_file(file)
        for key in FILE_RELATIVE:  # a folder named in the file is relative to the file
            if isinstance(layer.get(key), str) and not Path(layer[key]).expanduser().is_absolute():
                layer[key] = str(Path(file).parent / layer[key])
        for path, value in _leaves(layer):
            check_key(path, f"{label}: {'.'.join(path)}")
            _put(data, path, value)
            origin[path] = f"{label}: {'.'.join(path)} = {value!r}"
    for key, value in (flags or {}).items():
        name = (flag_names or {}).get(key, "--" + key.replace("_", "-"))
        check_key((key,), name)
        _put(data, (key,), value)
        origin[(key,)] = f"{name} {value!r}"
    apply_sets(data, sets, origin)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe(e, origin)) from None


def read_file(file: str | Path) -> dict[str, Any]:
    """A --config file's settings (TOML: top-level keys, [search] and such tables)."""
    try:
        return tomllib.loads(Path(file).read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config {file}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {file}: cannot read it ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config {file}: not valid TOML: {e}") from None


def apply_sets(data: dict[str, Any], sets: Sequence[str],
               origin: dict[tuple[str, ...], str] | None = None) -> dict[str, Any]:
    """Apply each KEY=VALUE (dotted keys for nested settings: search.islands=5) to `data`.
    A value is read as TOML where it parses (5, 1.5, true, ["a", "b"]), else as a string."""
    for item in sets:
        key, eq, text = item.partition("=")
        path = tuple(part.strip() for part in key.split("."))
        if not eq or not all(path):
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. search.islands=5")
        check_key(path, f"--set {item}")
        _put(data, path, parse_value(text.strip()))
        if origin is not None:
            origin[path] = f"--set {item}"
    return data


def parse_value(text: str) -> Any:
    """A --set value: a TOML value where it parses, else the text itself."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    return parsed["v"] if parsed.keys() == {"v"} else text


def check_key(path: tuple[str, ...], label: str, model: type[BaseModel] = RunConfig) -> None:
    """Raise ConfigError unless `path` names a setting (or lies inside a free-form table such
    as pricing); the message lists the valid keys at the level that went wrong."""
    for depth, key in enumerate(path):
        if key not in model.model_fields:
            prefix = "".join(f"{p}." for p in path[:depth])
            valid = [prefix + name + (".*" if _nested(model, name) else "") for name in model.model_fields]
            raise ConfigError(f"{label}: unknown setting; valid: {', '.join(valid)}")
        nested = _nested(model, key)
        if nested is None:
            if depth + 1 < len(path) and get_origin(model.model_fields[key].annotation) is not dict:
                raise ConfigError(f"{label}: {'.'.join(path[:depth + 1])} is a value, not a table "
                                  "of settings")
            return  # a value, or a free-form table (pricing): pydantic checks what is inside
        model = nested


def describe(e: ValidationError, origin: dict[tuple[str, ...], str]) -> str:
    """One line for all of a validation's errors, each named by where its value came from."""
    parts = []
    for err in e.errors():
        loc = tuple(str(p) for p in err["loc"])
        where = ".".join(loc)
        for n in range(len(loc), 0, -1):
            if loc[:n] in origin:
                where = origin[loc[:n]] + (f" ({where})" if n < len(loc) else "")
                break
        parts.append(f"{where}: {err['msg'][:1].lower()}{err['msg'][1:]}")
    return "; ".join(parts)


def _nested(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    ann = model.model_fields[name].annotation
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _leaves(table: dict[str, Any], model: type[BaseModel] | None = RunConfig,
            prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(key path, value) of each setting in a TOML table; free-form tables stay whole."""
    for key, value in table.items():
        nested = _nested(model, key) if model and key in model.model_fields else None
        if isinstance(value, dict) and nested:
            yield from _leaves(value, nested, (*prefix, key))
        else:
            yield (*prefix, key), value


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(data.get(key), dict):
            data[key] = {}
        data = data[key]
    data[path[-1]] = value
