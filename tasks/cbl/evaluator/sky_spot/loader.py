"""Load a policy the way the published evaluators accept it.

A policy file either defines a ``Strategy`` subclass (a ``MultiRegionStrategy`` for the
multi-region problem), or is a leaderboard ``Solution`` file: a class ``Solution`` whose
``solve(spec_path)`` returns the strategy source code, ``{"code": source}`` or
``{"program_path": path}`` (a module-level ``solve()`` function is accepted too).
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from pathlib import Path

from sky_spot.strategies.strategy import Strategy


class PolicyLoadError(Exception):
    pass


def _module_from_source(source: str, name: str, filename: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__file__ = filename
    sys.modules[name] = mod
    exec(compile(source, filename, "exec"), mod.__dict__)
    return mod


def _strategy_class(mod: types.ModuleType, base: type) -> type | None:
    found = [obj for obj in vars(mod).values()
             if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__ == mod.__name__
             and not inspect.isabstract(obj)]
    if not found:
        return None
    # the most derived one defined in the file (a file may define helpers/bases first)
    leaves = [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]
    return leaves[-1]


def load_strategy_class(path: Path, base: type = Strategy) -> type:
    path = Path(path)
    spec = importlib.util.spec_from_file_location("candidate_strategy", path)
    if spec is None or spec.loader is None:
        raise PolicyLoadError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["candidate_strategy"] = mod
    spec.loader.exec_module(mod)
    cls = _strategy_class(mod, base)
    if cls is not None:
        return cls
    solver = getattr(mod, "Solution", None)
    solve = getattr(solver(), "solve", None) if inspect.isclass(solver) else getattr(mod, "solve", None)
    if solve is None:
        raise PolicyLoadError(
            f"{path.name} defines no {base.__name__} subclass and no Solution.solve()/solve()")
    try:
        out = solve(str(path.parent / "spec.md"))
    except TypeError:
        out = solve()
    if isinstance(out, dict) and "program_path" in out:
        return load_strategy_class(Path(out["program_path"]), base)
    source = out.get("code") if isinstance(out, dict) else out
    if not isinstance(source, str):
        raise PolicyLoadError(
            f"solve() returned {type(out).__name__}; expected code, {{'code': ...}} or {{'program_path': ...}}")
    gen = _module_from_source(source, "candidate_strategy_solution", f"<solve() of {path.name}>")
    cls = _strategy_class(gen, base)
    if cls is None:
        raise PolicyLoadError(f"the code returned by solve() defines no {base.__name__} subclass")
    return cls
