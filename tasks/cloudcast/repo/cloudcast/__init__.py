"""Cloudcast broadcast policy: edit search.py (and add modules here)."""
