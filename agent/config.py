"""Run configuration: the ONE place defaults live. Docs, CLI help and the TUI read them here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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

    max_tokens: int = 16000
    """Output tokens per model turn (Anthropic; OpenAI uses the server's default when 0)."""
    thinking: int = 0
    """Extended-thinking budget in tokens for Anthropic models (0: off)."""
    max_retries: int = 6
    """Retries of a failed API call (429, 5xx, 529, timeouts, dropped connections)."""
    base_delay_s: float = 1.0
    """First backoff delay; it doubles per retry, with jitter, capped by max_delay_s."""
    max_delay_s: float = 60.0
    """Longest backoff delay (a server's retry-after is honoured up to this)."""
    timeout_s: float = 300.0
    """Seconds one API call may take."""


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
