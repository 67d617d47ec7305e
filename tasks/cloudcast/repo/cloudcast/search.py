"""Broadcast routing policy: how each data partition travels from the source to every destination.

``search_algorithm(src, dsts, G, num_partitions)`` returns a BroadCastTopology. ``G`` is a
networkx DiGraph over "provider:region" nodes; each edge has ``cost`` ($/GB egress) and
``throughput`` (Gbps). It is your own copy: changing it changes nothing for the evaluator.

The baseline routes the destinations one after another, each over its cheapest path under
the edge weight below. With the default constants the weight is the plain $/GB cost, so this
is exactly the published baseline (an independent cheapest path per destination, the same
path for every partition).
"""
from __future__ import annotations

import networkx as nx

from broadcast import BroadCastTopology

# Weight of an edge that an earlier destination already uses, as a multiple of its $/GB cost.
# 1.0 = no sharing (independent cheapest paths). Data crossing an edge is paid once, however
# many destinations it then reaches.
REUSE_COST_FACTOR = 1.0
# Added to an edge's weight per 1/Gbps of its throughput: > 0 prefers fast links.
THROUGHPUT_WEIGHT = 0.0
# Added to an edge's weight per hop: > 0 prefers fewer relays.
HOP_PENALTY = 0.0
# Edges slower than this (Gbps) are not used, unless nothing else reaches a destination.
MIN_THROUGHPUT_GBPS = 0.0


def edge_weight(data: dict, in_tree: bool) -> float:
    w = data["cost"] * (REUSE_COST_FACTOR if in_tree else 1.0)
    w = w + THROUGHPUT_WEIGHT / max(data["throughput"], 1e-9) + HOP_PENALTY
    return max(w, 0.0)


def search_algorithm(src: str, dsts: list[str], G: nx.DiGraph, num_partitions: int) -> BroadCastTopology:
    h = G.copy()
    h.remove_edges_from(list(h.in_edges(src)) + list(nx.selfloop_edges(h)))
    fast = h.edge_subgraph([(u, v) for u, v, d in h.edges(data=True) if d["throughput"] >= MIN_THROUGHPUT_GBPS])
    tree: set[tuple[str, str]] = set()

    def weight(u: str, v: str, d: dict) -> float:
        return edge_weight(d, (u, v) in tree)

    topo = BroadCastTopology(src, dsts, num_partitions)
    for dst in dsts:
        try:
            path = nx.dijkstra_path(fast, src, dst, weight=weight)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            path = nx.dijkstra_path(h, src, dst, weight=weight)
        hops = [[s, t, G[s][t]] for s, t in zip(path, path[1:])]
        tree.update((s, t) for s, t in zip(path, path[1:]))
        for j in range(num_partitions):
            topo.set_dst_partition_paths(dst, j, list(hops))
    return topo
