"""BroadCastTopology: the answer ``search_algorithm`` returns (the published helper class).

``paths[dst][str(partition)]`` is the list of hops ``[u, v, edge_data]`` that carries that
partition from the source to ``dst``. Only ``u`` and ``v`` matter to the evaluator: it looks
every edge up in its own graph, so ``edge_data`` is ignored.
"""
from __future__ import annotations

from typing import Dict, List


class SingleDstPath(Dict):
    partition: int
    edges: List[List]  # [[src, dst, edge data]]


class BroadCastTopology:
    def __init__(self, src: str, dsts: List[str], num_partitions: int = 4, paths: Dict[str, SingleDstPath] = None):
        self.src = src
        self.dsts = dsts
        self.num_partitions = num_partitions
        if paths is not None:
            self.paths = paths
        else:
            self.paths = {dst: {str(i): None for i in range(num_partitions)} for dst in dsts}

    def get_paths(self):
        return self.paths

    def set_num_partitions(self, num_partitions: int):
        self.num_partitions = num_partitions

    def set_dst_partition_paths(self, dst: str, partition: int, paths: List[List]):
        """Set the hops that carry ``partition`` to ``dst``."""
        self.paths[dst][str(partition)] = paths

    def append_dst_partition_path(self, dst: str, partition: int, path: List):
        """Append one hop ``[u, v, edge_data]`` to the path of ``partition`` to ``dst``."""
        partition = str(partition)
        if self.paths[dst][partition] is None:
            self.paths[dst][partition] = []
        self.paths[dst][partition].append(path)
