"""Cluster types and the price constants of the published simulator."""
from __future__ import annotations

import enum


class ClusterType(enum.Enum):
    NONE = "NONE"
    SPOT = "SPOT"
    ON_DEMAND = "ON_DEMAND"


def _fast_member_access(cls: type) -> None:
    """Make ``ClusterType.SPOT`` a plain class-attribute lookup.

    On Python 3.11 ``enum.EnumType`` defines ``__getattr__``, which sends every class
    attribute lookup (``ClusterType.SPOT``, done several times per tick by most policies)
    through a slow Python-level hook (about 5x a normal attribute). Rebinding the class to a
    copy of its metaclass without ``__getattr__`` keeps everything else (members are the same
    ``enum.Enum`` instances; ``ClusterType('SPOT')``, ``ClusterType['SPOT']``, iteration,
    ``len``, ``in``, pickling, "cannot reassign member") and only drops the legacy fallback
    lookup of members by ``__getattr__``. Python versions without the hook are left alone.
    """
    meta = type(cls)
    if "__getattr__" not in vars(meta):
        return

    def __setattr__(c, name, value):  # EnumType's, without super() (it needs an EnumType)
        if name in c.__dict__.get("_member_map_", {}):
            raise AttributeError(f"cannot reassign member {name!r}")
        type.__setattr__(c, name, value)

    def __delattr__(c, name):
        if name in c._member_map_:
            raise AttributeError(f"{c.__name__} cannot delete member {name!r}.")
        type.__delattr__(c, name)

    skip = ("__getattr__", "__setattr__", "__delattr__", "__new__", "__prepare__", "__dict__",
            "__weakref__")
    ns = {k: v for k, v in vars(meta).items() if k not in skip}
    ns.update(__setattr__=__setattr__, __delattr__=__delattr__, __module__=__name__,
              __qualname__="_ClusterTypeMeta")
    try:
        cls.__class__ = type("_ClusterTypeMeta", (type,), ns)
    except TypeError:  # an interpreter that refuses the rebinding: keep the plain enum
        return


_fast_member_access(ClusterType)

# On-demand $/h per device, matched by substring of the trace path (published DEVICE_COSTS).
DEVICE_COSTS = {"v100_1": 3.06}  # every evaluated device is billed 3.06 $/h on demand
# The published simulator: spot 0.9731 $/h, COST_K = on-demand / spot, and a trace without
# prices bills spot at base price / COST_K (which is 0.9731 again, to the last bit)
COST_K = 3.06 / 0.9731
COSTS = {
    ClusterType.ON_DEMAND: 3.06,
    ClusterType.SPOT: 3.06 / COST_K,
    ClusterType.NONE: 0.0,
}
