"""Candidate host process (evaluator-owned; started by evaluate.py, never imported by it).

Protocol on fd 0 / the saved fd 1: the parent sends length-prefixed pickles; this process answers
with one JSON header line followed by raw .npy blobs (the parent loads them with
allow_pickle=False, so nothing this process sends can run code in the parent).
Calls run in this one process, in order; module state persists between them.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import traceback

IN_FD = 0
OUT_FD = os.dup(1)
os.dup2(2, 1)  # candidate prints go to stderr, never into the protocol stream


def read_exact(n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(IN_FD, n - len(buf))
        if not chunk:
            os._exit(0)
        buf += chunk
    return bytes(buf)


def recv() -> dict:
    (n,) = struct.unpack("<Q", read_exact(8))
    return pickle.loads(read_exact(n))


def send(header: dict, arrays: list | None = None) -> None:
    import numpy as np

    blobs = []
    for a in arrays or []:
        bio = io.BytesIO()
        np.save(bio, a, allow_pickle=False)
        blobs.append(bio.getvalue())
    header = dict(header, lengths=[len(b) for b in blobs])
    data = json.dumps(header).encode() + b"\n" + b"".join(blobs)
    view = memoryview(data)
    while view:
        view = view[os.write(OUT_FD, view):]


def tb_tail(exc: BaseException, lines: int = 10) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return "\n".join(text.splitlines()[-lines:])


def to_numpy(x, np, torch):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().contiguous().numpy().copy()
    if isinstance(x, np.ndarray):
        return x.copy()
    raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")


def compact(a, np):
    """Integer arrays whose values fit int16 travel as int16 (less to copy; the parent re-checks all)."""
    if np.issubdtype(a.dtype, np.integer) and a.dtype.itemsize > 2 and a.size:
        if a.min() >= -32768 and a.max() <= 32767:
            return a.astype(np.int16)
    return a


def handle_call(msg: dict, fn, np, torch, dummy=None) -> None:
    """One call, one answer (the answer is an error header when the candidate fails)."""
    try:
        weight = torch.from_numpy(msg["weight"])
        if fn is None:  # calibration ping: same transport, no candidate work
            out = dummy
        else:
            out = fn(weight, *msg["args"])
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise TypeError(f"rebalance_experts must return (phy2log, log2phy, logcnt), got {type(out).__name__}")
        arrays = [compact(to_numpy(x, np, torch), np) for x in out]
    except BaseException as exc:  # noqa: BLE001 - report any candidate failure, incl. SystemExit
        send({"status": "error", "error": f"{type(exc).__name__}: {exc}\n{tb_tail(exc)}"})
        return
    send({"status": "ok"}, arrays)


def main() -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    fn = None
    send({"status": "booted"})
    while True:
        msg = recv()
        op = msg["op"]
        if op == "import":
            try:
                sys.path.insert(0, msg["path"])
                import importlib

                mod = importlib.import_module("eplb.policy")
                fn = getattr(mod, "rebalance_experts", None)
                if not callable(fn):
                    raise AttributeError("eplb.policy defines no callable rebalance_experts")
            except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit, ...
                send({"status": "error", "error": f"importing eplb.policy failed: {type(exc).__name__}: {exc}\n{tb_tail(exc)}"})
                continue
            send({"status": "ok"})
        elif op in ("call", "ping"):
            handle_call(recv(), fn if op == "call" else None, np, torch, msg.get("dummy"))
        elif op == "exit":
            return


if __name__ == "__main__":
    main()
