"""Where candidates live and run: git plumbing, isolated commands, evaluator stages.

Imports nothing of ours above it (the arrow goes agent -> tools -> sandbox).
"""
