"""Editable regions: files of which only the text between EVOLVE-BLOCK markers may change.

A task declares them in task.toml (`[repo] regions = ["initial_program.py"]`, globs). In such a
file every line holding `EVOLVE-BLOCK-START` opens a region and the next line holding
`EVOLVE-BLOCK-END` closes it (in any comment syntax, as OpenEvolve and ShinkaEvolve write
them); the marker lines themselves and everything outside the regions stay as they are. A
commit that changes any of it is rejected, naming the lines.
"""

from __future__ import annotations

import difflib

START, END = "EVOLVE-BLOCK-START", "EVOLVE-BLOCK-END"


class RegionError(ValueError):
    """Markers that do not pair up; the message names the line."""


def blocks(text: str) -> list[tuple[int, int]]:
    """(start marker, end marker) line indexes, 0-based, of each region in order."""
    found, start = [], None
    for i, line in enumerate(text.splitlines()):
        if START in line:
            if start is not None:
                raise RegionError(f"line {i + 1}: {START} inside the region opened on line {start + 1}")
            start = i
        elif END in line:
            if start is None:
                raise RegionError(f"line {i + 1}: {END} without an {START} before it")
            found.append((start, i))
            start = None
    if start is not None:
        raise RegionError(f"line {start + 1}: {START} is never closed by an {END}")
    return found


def describe(text: str) -> str:
    """Where the regions are, as 'lines 3-20, 31-40' (the text between the markers)."""
    spans = [f"{s + 2}-{e}" if e > s + 1 else f"empty at line {s + 1}" for s, e in blocks(text)]
    return "lines " + ", ".join(spans) if spans else "no region"


def _outside(lines: list[str], spans: list[tuple[int, int]]) -> list[tuple[int, list[str]]]:
    """The text outside the regions, marker lines included: (first line index, lines) per
    stretch; there is one more stretch than regions."""
    out, at = [], 0
    for s, e in spans:
        out.append((at, lines[at:s + 1]))
        at = e
    out.append((at, lines[at:]))
    return out


def changes_outside(old: str, new: str) -> list[str]:
    """What `new` changed outside `old`'s regions, one phrase per stretch with its line
    numbers in `new` (or `old`, for lines removed); empty when only region text changed."""
    try:
        old_spans = blocks(old)
    except RegionError as e:
        return [f"the markers were already broken ({e})"]
    try:
        new_spans = blocks(new)
    except RegionError as e:
        return [f"the {START}/{END} markers no longer pair up ({e})"]
    if len(new_spans) != len(old_spans):
        return [f"the file has {len(new_spans)} region(s) where it had {len(old_spans)}"]
    problems = []
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for (o_at, o_seg), (n_at, n_seg) in zip(_outside(old_lines, old_spans),
                                            _outside(new_lines, new_spans)):
        if o_seg == n_seg:
            continue
        matcher = difflib.SequenceMatcher(None, o_seg, n_seg, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            if j2 > j1:
                problems.append(f"{_span(n_at + j1, n_at + j2)} changed")
            else:
                problems.append(f"{_span(o_at + i1, o_at + i2)} of the old text removed")
    return problems


def _span(a: int, b: int) -> str:
    return f"line {a + 1}" if b - a == 1 else f"lines {a + 1}-{b}"
