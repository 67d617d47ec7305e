"""adrs-agent's stand-in for the few names OpenEvolve evaluators import, used only when the
real openevolve package is not installed (it comes after site-packages on sys.path)."""
