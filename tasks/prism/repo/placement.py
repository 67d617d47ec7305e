"""Model placement policy: put LLMs on GPUs so the worst KV-cache pressure is lowest.

The evaluator calls ``compute_model_placement(gpu_num, models)`` once per case. Each model
has ``model_name``, ``model_size`` (GB), ``req_rate`` (req/s), ``slo`` and ``cur_gpu_id``
(ignore it). Return ``{gpu_id: [model, ...]}`` with gpu ids in ``range(gpu_num)``, every
given model object exactly once, and at most GPU_MEM_SIZE GB of models per GPU.

KVPR(gpu) = sum(req_rate / slo) / (GPU_MEM_SIZE - sum(model_size)); minimise the max.

Baseline: PRISM's greedy (the published human_SOTA seed). Sort models by req_rate / slo
(descending) and put each on the fitting GPU whose pressure score is lowest, where
score = (load + LOOKAHEAD * a) / (free - LOOKAHEAD * size) for the model's a = req_rate / slo.
With LOOKAHEAD = 0 that is the GPU's current KVPR, as in the paper.
"""

GPU_MEM_SIZE = 80  # GB

LOOKAHEAD = 0.0  # weight of the model being placed in the pressure score (0 = current KVPR)
SIZE_WEIGHT = 0.0  # sort key = req_rate / slo + SIZE_WEIGHT * model_size / GPU_MEM_SIZE


def compute_model_placement(gpu_num, models):
    """Return {gpu_id: [models]} minimising the maximum KVPR across GPUs."""
    sorted_models = sorted(
        models,
        key=lambda m: m.req_rate / m.slo + SIZE_WEIGHT * m.model_size / GPU_MEM_SIZE,
        reverse=True,
    )
    placement = {gpu_id: [] for gpu_id in range(gpu_num)}
    free = [GPU_MEM_SIZE for _ in range(gpu_num)]  # memory left per GPU
    load = [0.0 for _ in range(gpu_num)]  # sum of req_rate / slo per GPU

    for model in sorted_models:
        a = model.req_rate / model.slo
        best_idx = None
        best_ratio = float("inf")
        for gpu_id in range(gpu_num):
            if model.model_size <= free[gpu_id] and free[gpu_id] > 0:
                room = free[gpu_id] - LOOKAHEAD * model.model_size
                if room <= 0:
                    continue
                ratio = (load[gpu_id] + LOOKAHEAD * a) / room
                if ratio < best_ratio:
                    best_ratio = ratio
                    best_idx = gpu_id
        if best_idx is None:
            raise ValueError(
                f"Unable to place model of size {model.model_size} GB on any GPU. "
                f"Remaining per-GPU memory: {free}"
            )
        placement[best_idx].append(model)
        load[best_idx] += a
        free[best_idx] -= model.model_size
    return placement
