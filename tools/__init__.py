"""The tool registry: the tools, their JSON schemas, and a validating `call`.

Schemas are built from each tool's signature (str/int/float/bool type hints; a default
makes an argument optional) and its docstring (first paragraph = description; the
Google-style `Args:` section = per-argument descriptions).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import typing
from collections.abc import Callable
from typing import Any

from tools.base import ToolContext, ToolResult, clip
from tools.commit import commit
from tools.edit import edit
from tools.finish import finish
from tools.list_files import list_files
from tools.read_file import read_file
from tools.read_log import read_log
from tools.run import run
from tools.run_evaluator import run_evaluator
from tools.search import search
from tools.write_file import write_file

TOOLS: dict[str, Callable[..., ToolResult]] = {
    fn.__name__: fn
    for fn in (list_files, read_file, search, edit, write_file, run_evaluator, read_log, run, commit, finish)
}

JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}

MORE_HINTS = {
    "read_file": "Read a smaller window with start= and limit=.",
    "read_log": "Read a smaller window with start= and limit=.",
    "search": "Narrow the search with a more specific pattern or path=.",
    "list_files": "Narrow the listing with path= or pattern=.",
}

_ARG_LINE = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _doc_parts(fn: Callable) -> tuple[str, dict[str, str]]:
    """(first paragraph, {arg: description}) from a Google-style docstring."""
    doc = inspect.getdoc(fn) or ""
    paragraphs = doc.split("\n\n")
    description = " ".join(line.strip() for line in paragraphs[0].splitlines()).strip()
    args: dict[str, str] = {}
    lines = doc.splitlines()
    if "Args:" in lines:
        current = None
        for line in lines[lines.index("Args:") + 1 :]:
            if line and not line.startswith(" "):
                break  # next section, e.g. "Returns:"
            text = line.strip()
            if not text:
                continue
            m = _ARG_LINE.match(text)
            if m and len(line) - len(line.lstrip()) <= 4:
                current = m.group(1)
                args[current] = m.group(2).strip()
            elif current:
                args[current] = f"{args[current]} {text}".strip()
    return description, args


def _params(fn: Callable) -> list[inspect.Parameter]:
    """The tool's parameters after ctx."""
    return list(inspect.signature(fn).parameters.values())[1:]


@functools.cache
def _arguments(fn: Callable) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """The tool's parameters after ctx by name, and its type hints (read once per tool)."""
    return {p.name: p for p in _params(fn)}, typing.get_type_hints(fn)


@functools.cache
def schema(fn: Callable) -> dict:
    """The tool's schema: {"name", "description", "input_schema"} for the model."""
    description, arg_docs = _doc_parts(fn)
    hints = typing.get_type_hints(fn)
    properties: dict[str, dict] = {}
    required: list[str] = []
    for p in _params(fn):
        kind = hints.get(p.name)
        if kind not in JSON_TYPES:
            raise TypeError(f"tool {fn.__name__}: argument {p.name} has unsupported type {kind!r}")
        if p.name not in arg_docs:
            raise TypeError(f"tool {fn.__name__}: argument {p.name} is not described under Args:")
        prop: dict[str, Any] = {"type": JSON_TYPES[kind], "description": arg_docs[p.name]}
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
        else:
            prop["default"] = p.default
        properties[p.name] = prop
    return {
        "name": fn.__name__,
        "description": description,
        "input_schema": {"type": "object", "properties": properties, "required": required},
    }


def schemas(names: list[str] | None = None) -> list[dict]:
    """Schemas of the named tools (all tools, in registry order, by default)."""
    if names is None:
        names = list(TOOLS)
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        raise KeyError(f"unknown tools {unknown}; known tools: {list(TOOLS)}")
    return [dict(schema(TOOLS[n])) for n in names]


def _coerce(value: Any, kind: type) -> tuple[bool, Any]:
    """(ok, value) converting the JSON value to the parameter's type where that is safe."""
    if kind is bool:
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return True, value.strip().lower() == "true"
        return False, value
    if isinstance(value, bool):
        return False, value  # True is an int in Python, but not an integer argument
    if kind is str:
        return isinstance(value, str), value
    if kind is int:
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return True, int(value)
        return False, value
    if kind is float:
        if isinstance(value, (int, float)):
            return True, float(value)
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return False, value
    return False, value


@functools.cache
def _expected(fn: Callable) -> str:
    """What a malformed call is told about the tool's arguments."""
    return f"Expected arguments for {fn.__name__}: {json.dumps(schema(fn)['input_schema'])}"


def call(ctx: ToolContext, name: str, arguments: dict | None) -> ToolResult:
    """Validate the model's arguments against the tool's signature, then run the tool."""
    fn = TOOLS.get(name)
    if fn is None:
        return ToolResult(f"unknown tool {name!r}; the tools are: {', '.join(TOOLS)}.", is_error=True, malformed=True)
    if arguments is None:
        arguments = {}
    spec = schema(fn)
    expected = _expected(fn)
    if not isinstance(arguments, dict):
        return ToolResult(
            f"arguments for {name} must be a JSON object, got {type(arguments).__name__}. {expected}",
            is_error=True, malformed=True,
        )
    params, hints = _arguments(fn)
    unknown = [a for a in arguments if a not in params]
    if unknown:
        return ToolResult(
            f"unknown argument(s) for {name}: {', '.join(unknown)}. {expected}", is_error=True, malformed=True
        )
    kwargs: dict[str, Any] = {}
    missing = []
    for pname, p in params.items():
        value = arguments.get(pname)
        if value is None:  # absent, or null: the default applies
            if p.default is inspect.Parameter.empty:
                missing.append(pname)
            continue
        ok, converted = _coerce(value, hints[pname])
        if not ok:
            return ToolResult(
                f"argument {pname!r} of {name} must be {spec['input_schema']['properties'][pname]['type']}, "
                f"got {type(value).__name__} {value!r:.80}. {expected}",
                is_error=True, malformed=True,
            )
        kwargs[pname] = converted
    if missing:
        return ToolResult(
            f"missing required argument(s) for {name}: {', '.join(missing)}. {expected}", is_error=True, malformed=True
        )
    result = fn(ctx, **kwargs)
    if not isinstance(result, ToolResult):
        result = ToolResult(str(result))
    text = result.text if result.text.strip() else f"{name} returned no output."
    return ToolResult(clip(text, ctx.max_output_chars, MORE_HINTS.get(name, "")), result.is_error,
                      data=result.data)
