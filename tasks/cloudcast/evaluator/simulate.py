"""Validate a broadcast topology against the evaluator's own graph and price it.

The cost model is the published ``BCSimulator``'s, with two differences that close its
loopholes: every edge's cost and throughput come from the evaluator's edge table (never from
the candidate's edge dicts), and every (destination, partition) path must be a contiguous
walk from the source to that destination over real edges, so a destination's transfer time
counts every edge that carries its data.
"""
from __future__ import annotations

from dataclasses import dataclass

from instances import Instance

COST_PER_INSTANCE_HR = 0.54  # $/h per VM (m5.8xlarge spot), as published
NUM_VMS = 2


class TopologyError(Exception):
    """The returned topology is not a valid broadcast (message says why)."""


@dataclass
class Outcome:
    cost: float          # $ total
    egress_cost: float   # $
    vm_cost: float       # $
    time_s: float        # transfer time of the slowest destination
    n_edges: int
    n_nodes: int


def _name(x, where: str) -> str:
    if type(x) is not str:
        raise TopologyError(f"{where}: a node must be a region name string, got {type(x).__name__} {x!r:.60}")
    return x


def check_paths(inst: Instance, paths, table: dict) -> dict[str, list[list[tuple[str, str]]]]:
    """{dst: [edges of partition 0, ...]} after checking every path; raises TopologyError."""
    if not isinstance(paths, dict):
        raise TopologyError(f"paths must be a dict {{dst: {{partition: [hop, ...]}}}}, got {type(paths).__name__}")
    out: dict[str, list[list[tuple[str, str]]]] = {}
    for dst in inst.dsts:
        per = paths.get(dst)
        if not isinstance(per, dict):
            raise TopologyError(f"no paths for destination {dst} (paths[{dst!r}] is {type(per).__name__})")
        out[dst] = []
        for p in range(inst.num_partitions):
            hops = per.get(str(p))
            where = f"destination {dst}, partition {p}"
            if not isinstance(hops, list) or not hops:
                raise TopologyError(f"{where}: no path (expected a non-empty list of [u, v, edge_data] hops, "
                                    f"got {hops!r:.60})")
            edges = []
            at = inst.src
            for i, hop in enumerate(hops):
                if not isinstance(hop, list) or len(hop) < 2:
                    raise TopologyError(f"{where}, hop {i}: expected [u, v, edge_data], got {hop!r:.80}")
                u, v = _name(hop[0], f"{where}, hop {i}"), _name(hop[1], f"{where}, hop {i}")
                if u != at:
                    raise TopologyError(
                        f"{where}, hop {i}: path is not contiguous from the source: hop starts at {u} but the "
                        f"data is at {at} (the first hop must start at {inst.src})")
                if (u, v) not in table:
                    raise TopologyError(f"{where}, hop {i}: {u} -> {v} is not an edge of the region graph")
                edges.append((u, v))
                at = v
            if at != dst:
                raise TopologyError(f"{where}: path ends at {at}, not at the destination {dst}")
            out[dst].append(edges)
    return out


def simulate(inst: Instance, checked: dict[str, list[list[tuple[str, str]]]], table: dict,
             num_vms: int = NUM_VMS) -> Outcome:
    """Price a checked topology with the published simulator's rules."""
    # Edges in first-use order (dsts, partitions, hops), as the published simulator builds them:
    # the in/egress sharing below is order-dependent.
    parts: dict[tuple[str, str], set[int]] = {}
    for dst in inst.dsts:
        for p, edges in enumerate(checked[dst]):
            for e in edges:
                parts.setdefault(e, set()).add(p)
    flow = {e: table[e][1] for e in parts}
    nodes: dict[str, None] = {}
    ins: dict[str, list] = {}
    outs: dict[str, list] = {}
    for u, v in parts:
        nodes.setdefault(u)
        nodes.setdefault(v)
        outs.setdefault(u, []).append((u, v))
        ins.setdefault(v, []).append((u, v))
    ingress = {k: num_vms * x for k, x in inst.ingress.items()}
    egress = {k: num_vms * x for k, x in inst.egress.items()}
    for node in nodes:
        provider = node.split(":")[0]
        in_e, out_e = ins.get(node, []), outs.get(node, [])
        if sum(flow[e] for e in in_e) > ingress[provider]:
            for e in in_e:
                flow[e] = min(flow[e], ingress[provider] / len(in_e))
        if sum(flow[e] for e in out_e) > egress[provider]:
            for e in out_e:
                flow[e] = min(flow[e], egress[provider] / len(out_e))
    pvol = inst.data_vol / inst.num_partitions
    t_max = float("-inf")
    for dst in inst.dsts:
        for edges in checked[dst]:
            for e in edges:
                t_max = max(t_max, len(parts[e]) * pvol * 8 / flow[e])
    egress_cost = sum(len(ps) * pvol * table[e][0] for e, ps in parts.items())
    vm_cost = len(nodes) * num_vms * (COST_PER_INSTANCE_HR / 3600) * round(t_max, 2)
    return Outcome(egress_cost + vm_cost, egress_cost, vm_cost, t_max, len(parts), len(nodes))


def reference_paths(inst: Instance, base) -> dict:
    """The published baseline's topology: per destination the cheapest path (Dijkstra on cost,
    edges into the source removed), the same path for every partition."""
    import networkx as nx

    h = base.copy()  # base: the nx.DiGraph of the evaluator's edge table
    h.remove_edges_from(list(h.in_edges(inst.src)))
    out = {}
    for dst in inst.dsts:
        nodes = nx.dijkstra_path(h, inst.src, dst, weight="cost")
        hops = [[a, b] for a, b in zip(nodes, nodes[1:])]
        out[dst] = {str(p): hops for p in range(inst.num_partitions)}
    return out
