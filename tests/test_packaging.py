"""How the project is installed costs every Python start: each evaluator and candidate
process. An editable install must be a plain path in a .pth file, not setuptools' import
finder (~13 ms of imports per start)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest


def test_a_python_start_imports_no_editable_finder():
    installs = [json.loads(d.read_text("direct_url.json") or "{}")
                for d in metadata.distributions() if d.metadata["Name"] == "adrs-agent"]
    if not any(i.get("dir_info", {}).get("editable") for i in installs):
        pytest.skip("adrs-agent is not installed editable here")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], cwd="/",
                         capture_output=True, text=True, check=True).stderr
    assert "__editable__" not in out and "adrs_agent" not in out
    imported = subprocess.run([sys.executable, "-c", "import adrs_eval, agent; "
                               "print(adrs_eval.__file__)"], cwd="/", capture_output=True,
                              text=True, check=True).stdout
    assert imported.strip().endswith("adrs_eval/__init__.py")
