"""adrs-agent's stand-in for what ShinkaEvolve evaluators import (`shinka.core.run_shinka_eval`),
used only when the real shinka package is not installed."""
