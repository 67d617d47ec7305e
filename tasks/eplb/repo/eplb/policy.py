"""Expert-parallel load balancing (EPLB) for a Mixture-of-Experts model.

``rebalance_experts`` gets the token load of every logical expert in every MoE
layer over the last window and decides, per layer, how many replicas each
logical expert gets and which physical slot hosts each replica. Slot ``s``
lives on GPU ``s // (num_replicas // num_gpus)``; GPUs ``g`` with
``g // (num_gpus // num_nodes)`` equal share a node. The mapping is scored on
the NEXT window's load, so it is a prediction.

The baseline is the hierarchical DeepSeek EPLB algorithm (as shipped in vLLM):

1. pack the ``num_groups`` expert groups onto nodes with balanced greedy packing;
2. inside each node, add replicas one at a time to the expert with the highest
   load per replica;
3. pack the node's replicas onto its GPUs with balanced greedy packing
   (equal slot count per GPU).

When ``num_groups % num_nodes != 0`` it falls back to one node and one group
(the "global" policy).
With the default constants below the policy is exactly that algorithm.
"""
from __future__ import annotations

import torch

# The load used for planning is  (weight + LOAD_FLOOR * layer_mean) ** LOAD_EXPONENT.
# LOAD_EXPONENT < 1 flattens the skew (hedges against load drift between windows);
# LOAD_FLOOR > 0 gives every expert some load (cold experts may become hot).
LOAD_EXPONENT = 1.0
LOAD_FLOOR = 0.0
# Use the hierarchical (node-confined) plan only when each node holds at least this many
# expert groups; otherwise plan globally (one node, one group: replicas may go to any GPU).
HIERARCHY_MIN_GROUPS_PER_NODE = 1


def planning_load(weight: torch.Tensor) -> torch.Tensor:
    """The load the balancer plans with (float64, [layers, experts])."""
    w = weight.to(torch.float64)
    if LOAD_FLOOR != 0.0:
        w = w + LOAD_FLOOR * w.mean(dim=-1, keepdim=True)
    if LOAD_EXPONENT != 1.0:
        w = w.clamp(min=0.0) ** LOAD_EXPONENT
    return w


def balanced_packing(weight: torch.Tensor, num_packs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy LPT packing of ``n`` items per row into ``num_packs`` packs of n/num_packs items.

    Returns (pack_index, rank_in_pack), both int64 ``[rows, n]``.
    """
    rows, n = weight.shape
    per_pack = n // num_packs
    if per_pack == 1:
        pack = torch.arange(n, dtype=torch.int64).expand(rows, n).clone()
        return pack, torch.zeros(rows, n, dtype=torch.int64)
    order = weight.float().sort(dim=-1, descending=True).indices.tolist()
    values = weight.tolist()
    pack_index = [[-1] * n for _ in range(rows)]
    rank_in_pack = [[-1] * n for _ in range(rows)]
    for r in range(rows):
        loads = [0.0] * num_packs
        counts = [0] * num_packs
        row_vals, row_pack, row_rank = values[r], pack_index[r], rank_in_pack[r]
        for item in order[r]:
            best = -1
            for p in range(num_packs):
                if counts[p] < per_pack and (best < 0 or loads[p] < loads[best]):
                    best = p
            row_pack[item] = best
            row_rank[item] = counts[best]
            loads[best] += row_vals[item]
            counts[best] += 1
    return torch.tensor(pack_index, dtype=torch.int64), torch.tensor(rank_in_pack, dtype=torch.int64)


def replicate_experts(weight: torch.Tensor, num_phy: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Give ``num_phy - n`` extra replicas, one at a time, to the expert with the most load per replica.

    Returns (phy2log [rows, num_phy], replica rank [rows, num_phy], count [rows, n]).
    """
    rows, n = weight.shape
    phy2log = torch.arange(num_phy, dtype=torch.int64).repeat(rows, 1)
    rank = torch.zeros(rows, num_phy, dtype=torch.int64)
    count = torch.ones(rows, n, dtype=torch.int64)
    row_ids = torch.arange(rows)
    for slot in range(n, num_phy):
        pick = (weight / count).max(dim=-1).indices
        phy2log[:, slot] = pick
        rank[:, slot] = count[row_ids, pick]
        count[row_ids, pick] += 1
    return phy2log, rank, count


def _inverse(perm: torch.Tensor) -> torch.Tensor:
    inv = torch.empty_like(perm)
    inv.scatter_(1, perm, torch.arange(perm.size(1), dtype=torch.int64).expand(perm.shape))
    return inv


def rebalance_hierarchical(weight: torch.Tensor, num_phy: int, num_groups: int, num_nodes: int,
                           num_gpus: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    layers, num_log = weight.shape
    group_size = num_log // num_groups
    groups_per_node = num_groups // num_nodes
    slots_per_gpu = num_phy // num_gpus
    log_per_node = num_log // num_nodes

    # 1. expert groups -> nodes
    group_load = weight.unflatten(-1, (num_groups, group_size)).sum(-1)
    g_pack, g_rank = balanced_packing(group_load, num_nodes)
    log2mlog = (((g_pack * groups_per_node + g_rank) * group_size).unsqueeze(-1)
                + torch.arange(group_size, dtype=torch.int64)).flatten(-2)
    mlog2log = _inverse(log2mlog)

    # 2. replicas inside each node ("mlog" = node-major logical ids)
    node_load = weight.gather(-1, mlog2log).view(-1, log_per_node)
    phy2mlog, phy_rank, mlog_cnt = replicate_experts(node_load, num_phy // num_nodes)

    # 3. replicas -> GPUs inside each node
    replica_load = (node_load / mlog_cnt).gather(-1, phy2mlog)
    p_pack, p_rank = balanced_packing(replica_load, num_gpus // num_nodes)
    phy2pphy = p_pack * slots_per_gpu + p_rank
    pphy2phy = _inverse(phy2pphy)

    pphy2mlog = phy2mlog.gather(-1, pphy2phy)
    offsets = torch.arange(0, num_log, log_per_node, dtype=torch.int64).view(1, -1, 1)
    pphy2mlog = (pphy2mlog.view(layers, num_nodes, -1) + offsets).flatten(-2)
    pphy2log = mlog2log.gather(-1, pphy2mlog)
    pphy_rank = phy_rank.gather(-1, pphy2phy).view(layers, -1)
    logcnt = mlog_cnt.view(layers, -1).gather(-1, log2mlog)
    return pphy2log, pphy_rank, logcnt


def rebalance_experts(weight: torch.Tensor, num_replicas: int, num_groups: int, num_nodes: int,
                      num_gpus: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Plan expert replication and placement.

    Args:
        weight: [layers, num_logical_experts] load per logical expert (int64 token counts).
        num_replicas: physical expert slots per layer (a multiple of num_gpus).
        num_groups: expert groups (num_logical_experts is a multiple of it).
        num_nodes: server nodes; num_gpus: GPUs (a multiple of num_nodes).

    Returns:
        phy2log: [layers, num_replicas] logical expert hosted by each slot.
        log2phy: [layers, num_logical_experts, X] the slots of each expert, -1 padded.
        logcnt:  [layers, num_logical_experts] replica count of each expert.
    """
    layers, num_log = weight.shape
    w = planning_load(weight.cpu())
    if num_groups % num_nodes == 0 and num_groups // num_nodes >= HIERARCHY_MIN_GROUPS_PER_NODE:
        phy2log, phy_rank, logcnt = rebalance_hierarchical(w, num_replicas, num_groups, num_nodes, num_gpus)
    else:
        phy2log, phy_rank, logcnt = rebalance_hierarchical(w, num_replicas, 1, 1, num_gpus)
    max_cnt = num_replicas - num_log + 1
    log2phy = torch.full((layers, num_log, max_cnt), -1, dtype=torch.int64)
    log2phy.view(layers, -1).scatter_(
        -1, phy2log * max_cnt + phy_rank,
        torch.arange(num_replicas, dtype=torch.int64).expand(layers, -1).contiguous())
    return phy2log, log2phy, logcnt
