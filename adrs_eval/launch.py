"""Inside the jail: `python -I launch.py ENTRY ARGS...` runs a task's candidate-side script
with the kit (`adrs_eval.side`) and the script's own folder importable."""

import os
import runpy
import sys

if __name__ == "__main__":
    entry = sys.argv[1]
    sys.argv = sys.argv[1:]
    kit_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [os.path.dirname(os.path.abspath(entry)), kit_parent]
    runpy.run_path(entry, run_name="__main__")
