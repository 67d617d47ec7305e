"""Candidate side of the bin-packing task (runs inside the jail, next to the candidate's code).

It imports ``binpack.policy`` and answers the evaluator's lockstep steps. Protocol:

- after the import it sends {"ready": true} or {"import_error": text};
- then, per item index, the evaluator sends [[k, item], ...] (with the bin capacity as a third
  field on an instance's first item): for every instance k still packing, its next item. This
  script keeps its own copy of each instance's remaining capacities, applying its own answers
  as the evaluator does, and replies with one answer per entry: a plain int bin index,
  {"why": text} when choose_bin returned something that is not an int, or {"raised": text,
  "tb": text}.

Nothing here is trusted: the evaluator keeps the authoritative bins and validates every answer
(an instance whose answer it refuses stops there, so this copy never needs correcting).
"""

import operator

import numpy as np

from adrs_eval.side import channel, describe, load_candidate, tb_tail

REPR_CHARS = 200  # how much of a bad answer's repr the feedback quotes


class Bins:
    """Remaining capacities of one instance's open bins, in opening order."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.buf = np.empty(64, dtype=np.float64)
        self.n = 0

    def apply(self, ans, item: float) -> None:
        """Place item as the evaluator will (an answer it refuses ends the instance there)."""
        if type(ans) is not int:
            return
        if ans == -1 or ans == self.n:  # a new bin
            if self.n == len(self.buf):
                self.buf = np.concatenate([self.buf, np.empty(len(self.buf), dtype=np.float64)])
            self.buf[self.n] = self.capacity - item
            self.n += 1
        elif 0 <= ans < self.n:
            self.buf[ans] -= item

    def view(self) -> np.ndarray:
        return self.buf[:self.n].copy()


def short_repr(obj) -> str:
    try:
        return repr(obj)[:REPR_CHARS]
    except BaseException as exc:  # noqa: BLE001 - a hostile __repr__ only spoils its own feedback
        return f"<object whose repr raised {type(exc).__name__}>"


def answer(choose_bin, item: float, remaining: np.ndarray):
    """choose_bin's decision as a plain int, or a dict saying why there is none."""
    try:
        ans = choose_bin(item, remaining)
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: the item is lost either way
        return {"raised": f"{type(exc).__name__}: {exc}"[:2000], "tb": tb_tail(exc)}
    if ans is None:
        return {"why": "returned None: item lost"}
    if isinstance(ans, (bool, np.bool_)):
        return {"why": f"returned a bool {short_repr(ans)}, expected an int index"}
    try:
        return int(operator.index(ans))  # numpy ints become plain ints for JSON
    except BaseException:  # noqa: BLE001 - a hostile __index__ may raise anything
        return {"why": f"returned non-integer {short_repr(ans)} of type {type(ans).__name__}"}


def main() -> None:
    chan = channel()
    try:
        policy = load_candidate("binpack.policy")
        choose_bin = getattr(policy, "choose_bin", None)
        if not callable(choose_bin):
            raise AttributeError("binpack.policy has no callable choose_bin(item, remaining)")
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit: all are import errors
        chan.send({"import_error": describe(exc)})
        return
    chan.send({"ready": True})
    bins: dict[int, Bins] = {}
    for step in chan:
        answers = []
        for entry in step:
            k, item = entry[0], entry[1]
            own = bins.get(k)
            if own is None:  # the instance's first item comes with its capacity
                own = bins[k] = Bins(entry[2])
            ans = answer(choose_bin, item, own.view())
            own.apply(ans, item)
            answers.append(ans)
        chan.send(answers)


main()
