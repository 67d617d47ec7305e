"""The candidate's side of eplb: hosts eplb.policy inside the jail (started by evaluate.py with
adrs_eval.candidate; it sees the candidate's files and nothing of the evaluator's).

Protocol over the kit's pipe: the evaluator sends length-prefixed pickles (trusted -> here);
this process answers with one JSON header line followed by raw .npy blobs, which the
evaluator loads with allow_pickle=False, so nothing sent from here can run code there.
Calls run in this one process, in order; module state persists between them.
"""
from __future__ import annotations

import io
import json
import pickle
import struct

from adrs_eval.side import channel, describe, load_candidate

chan = channel()  # first: from here on the candidate's prints go to stderr


def read_exact(n: int) -> bytes:
    data = chan.input.read(n)
    if len(data) < n:  # the evaluator closed the pipe: nothing more to do
        raise SystemExit(0)
    return data


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
    chan.output.write(json.dumps(header).encode() + b"\n" + b"".join(blobs))
    chan.output.flush()


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
        send({"status": "error", "error": describe(exc)})
        return
    send({"status": "ok"}, arrays)


def import_policy():
    """The candidate's rebalance_experts, or None after reporting why it cannot be had."""
    try:
        fn = getattr(load_candidate("eplb.policy"), "rebalance_experts", None)
        if not callable(fn):
            raise AttributeError("eplb.policy defines no callable rebalance_experts")
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit, ...
        send({"status": "error", "error": f"importing eplb.policy failed: {describe(exc)}"})
        return None
    send({"status": "ok"})
    return fn


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
            fn = import_policy()
        elif op in ("call", "ping"):
            handle_call(recv(), fn if op == "call" else None, np, torch, msg.get("dummy"))
        elif op == "exit":
            return


if __name__ == "__main__":
    main()
