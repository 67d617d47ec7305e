"""The harness's own overhead per LLM turn, against the loopback fake servers.

For each provider, N turns of a mid-episode conversation (system prompt, brief, 12 tool
round trips of ~2 KB each, all 10 tool schemas) go through the model class (message
conversion, cache breakpoints, the SDK, streaming assembly, usage and cost), interleaved
with the bare HTTP round trip: an httpx POST of the very same JSON payload to the same fake,
reading the whole SSE reply. The fake runs in a child process, as a remote API would. The
overhead is the median of the paired differences (model turn - bare round trip). Target:
under 5 ms per turn beyond the HTTP round trip.

    python bench/llm_turn.py [--turns 200]

Last line: one JSON object (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

try:
    import httpx2 as httpx
except ImportError:  # older SDKs ride on httpx
    import httpx

import tools  # noqa: E402
from agent.models.anthropic import AnthropicModel  # noqa: E402
from agent.models.openai import OpenAIModel  # noqa: E402
from fakes import call, reply  # noqa: E402
from fakes.anthropic_server import FakeAnthropic  # noqa: E402
from fakes.openai_server import FakeOpenAI  # noqa: E402

STEPS = 12
WARMUP = 10


def conversation() -> list[dict]:
    line = "    score = score - (SMALL_GAP_PENALTY * SMALL_GAP) * small  # a line of code\n"
    messages = [{"role": "system", "content": "You are a systems researcher. " * 60},
                {"role": "user", "content": "Improve the online bin-packing policy. " * 100}]
    for i in range(STEPS):
        cid = f"toolu_{i:04d}"
        messages.append({"role": "assistant", "content": f"Step {i}: reading.",
                         "tool_calls": [{"id": cid, "name": "read_file",
                                         "arguments": {"path": "binpack/policy.py", "start": i}}]})
        messages.append({"role": "tool", "tool_call_id": cid, "name": "read_file",
                         "content": line * 25, "is_error": False})
    return messages


def the_reply():
    return reply("Next I will tighten the gap penalty and re-run the quick stage.",
                 call("edit", path="binpack/policy.py", old_str="SMALL_GAP_PENALTY = 0.0",
                      new_str="SMALL_GAP_PENALTY = 1.0"),
                 input=9000, output=120, cache_read=30000, cache_write=800)


def serve(kind: str, replies: int) -> None:
    """In a child process: a fake server with `replies` replies, until stdin closes."""
    server = (FakeAnthropic if kind == "anthropic" else FakeOpenAI)(
        [the_reply() for _ in range(replies)]).start()
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()


def measure(kind: str, make_model, path: str, headers: dict, turns: int) -> dict:
    """Model turns and bare round trips, interleaved, against a fake in another process
    (as a real API is: its work does not take this process's time)."""
    child = subprocess.Popen([sys.executable, __file__, "--serve", kind,
                              "--turns", str(2 * (turns + WARMUP))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        model = make_model(url)
        messages, schemas = conversation(), tools.schemas()
        payload = model.request(messages, schemas)
        model_ms, http_ms = [], []
        with httpx.Client(timeout=30) as client:
            for i in range(turns + WARMUP):
                t0 = time.perf_counter()
                turn = model.complete(messages, schemas)
                t1 = time.perf_counter()
                with client.stream("POST", url + path, json=payload, headers=headers) as r:
                    size = sum(len(b) for b in r.iter_bytes())
                t2 = time.perf_counter()
                assert turn.tool_calls and r.status_code == 200 and size > 0
                if i >= WARMUP:  # connections, imports, caches
                    model_ms.append((t1 - t0) * 1e3)
                    http_ms.append((t2 - t1) * 1e3)
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    paired = statistics.median(m - h for m, h in zip(model_ms, http_ms))
    return {"turn_ms_median": round(statistics.median(model_ms), 3),
            "http_roundtrip_ms_median": round(statistics.median(http_ms), 3),
            "turn_overhead_ms_median": round(paired, 3),
            "payload_kb": round(len(json.dumps(payload)) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--serve", choices=["anthropic", "openai"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.turns)
    warnings.simplefilter("ignore")  # the SDK's model deprecation notices
    figures = {
        "anthropic": measure(
            "anthropic", lambda url: AnthropicModel("claude-sonnet-4-6", api_key="bench",
                                                    base_url=url, max_retries=0),
            "/v1/messages", {"x-api-key": "bench", "anthropic-version": "2023-06-01"},
            args.turns),
        "openai": measure(
            "openai", lambda url: OpenAIModel("gpt-5", base_url=url, max_retries=0),
            "/chat/completions", {"authorization": "Bearer not-needed"}, args.turns),
    }
    for name, f in figures.items():
        print(f"{name:9s} turn {f['turn_ms_median']:7.2f} ms   bare HTTP "
              f"{f['http_roundtrip_ms_median']:7.2f} ms   overhead "
              f"{f['turn_overhead_ms_median']:6.2f} ms/turn   ({f['payload_kb']} KB request)")
    flat = {f"{name}_{k}": v for name, f in figures.items() for k, v in f.items()}
    worst = max(figures.values(), key=lambda f: f["turn_overhead_ms_median"])
    print(json.dumps({"turn_overhead_ms_median": worst["turn_overhead_ms_median"],
                      "http_roundtrip_ms_median": worst["http_roundtrip_ms_median"], **flat}))


if __name__ == "__main__":
    main()
