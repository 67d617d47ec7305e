"""The three published TXN workloads as JSON strings: WORKLOAD_1, WORKLOAD_2, WORKLOAD_3.

Read from ``data/workload_{1,2,3}.json`` beside this file, or from the folder named by the
environment variable TXN_WORKLOADS_DIR when it is set.
"""

import os
from pathlib import Path

_DIR = Path(os.environ.get("TXN_WORKLOADS_DIR") or Path(__file__).resolve().parent / "data")

WORKLOAD_1 = (_DIR / "workload_1.json").read_text()
WORKLOAD_2 = (_DIR / "workload_2.json").read_text()
WORKLOAD_3 = (_DIR / "workload_3.json").read_text()
