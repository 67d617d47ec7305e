"""Stand-in for shinka.core.run_shinka_eval, written for adrs-agent from its documented
behaviour: run the program's experiment function `num_runs` times (sequentially; early stopping
and parallel runs are not reproduced), validate and aggregate the runs, and write
`metrics.json` and `correct.json` to results_dir."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import statistics
import time


def _load(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {program_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _save(results_dir, metrics, correct, error):
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "correct.json"), "w") as f:
        json.dump({"correct": correct, "error": error}, f, indent=4)
    with open(os.path.join(results_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=4, default=str)


def run_shinka_eval(program_path, results_dir, experiment_fn_name, num_runs,
                    get_experiment_kwargs=None, aggregate_metrics_fn=None, validate_fn=None,
                    plotting_fn=None, default_metrics_on_error=None, **_ignored):
    correct, error, errors, valid, invalid = True, None, [], 0, 0
    results, times = [], []
    try:
        fn = getattr(_load(program_path), experiment_fn_name, None)
        if fn is None:
            raise AttributeError(f"Experiment function '{experiment_fn_name}' not found in {program_path}")
        for i in range(num_runs):
            kwargs = get_experiment_kwargs(i) if get_experiment_kwargs else {"seed": i + 1}
            t0 = time.perf_counter()
            out = fn(**kwargs)
            times.append(time.perf_counter() - t0)
            results.append(out)
            if validate_fn:
                ok, why = validate_fn(out)
                if ok:
                    valid += 1
                else:
                    invalid += 1
                    correct = False
                    if why and error is None:
                        error = f"Validation failed: {why}"
                    if why and why not in errors:
                        errors.append(why)
        metrics = aggregate_metrics_fn(results) if aggregate_metrics_fn else {"num_successful_runs": len(results)}
        metrics["execution_time_mean"] = statistics.fmean(times) if times else 0.0
        metrics["execution_time_std"] = statistics.pstdev(times) if times else 0.0
        if validate_fn:
            metrics.update(num_valid_runs=valid, num_invalid_runs=invalid, all_validation_errors=errors)
        score = metrics.get("combined_score")
        if isinstance(score, (int, float)) and not math.isfinite(score):
            correct = False
            error = error or f"combined_score is {score}"
    except Exception as e:  # noqa: BLE001 - reported in correct.json, as shinka does
        metrics = dict(default_metrics_on_error or {"combined_score": 0.0})
        metrics.setdefault("combined_score", 0.0)
        correct, error = False, str(e)
    if "extra_data" in metrics:
        os.makedirs(results_dir, exist_ok=True)
        with open(os.path.join(results_dir, "extra.pkl"), "wb") as f:
            pickle.dump(metrics.pop("extra_data"), f)
    _save(results_dir, metrics, correct, error)
    return metrics, correct, error
