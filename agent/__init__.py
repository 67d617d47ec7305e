"""adrs-agent: tool-using agents that evolve whole repos, scored by a task's simulator."""

__version__ = "0.1.0"
