"""Snapshot of the tool schemas the model sees: a change to a signature or docstring shows here.

To accept an intended change, regenerate the snapshot:
    python -c "import json, tools; print(json.dumps(tools.schemas(), indent=2))" > tests/snapshots/tool_schemas.json
"""

from __future__ import annotations

import json
from pathlib import Path

import tools

SNAPSHOT = Path(__file__).parent / "snapshots" / "tool_schemas.json"


def test_schemas_match_snapshot():
    expected = json.loads(SNAPSHOT.read_text())
    assert tools.schemas() == expected


def test_every_argument_is_described_and_typed():
    for s in tools.schemas():
        assert s["description"], s["name"]
        props = s["input_schema"]["properties"]
        for name, prop in props.items():
            assert prop["description"], (s["name"], name)
            assert prop["type"] in {"string", "integer", "number", "boolean"}
        for name in s["input_schema"]["required"]:
            assert name in props and "default" not in props[name]
