"""Run the benchmarks: `python -m bench` runs them all, `python -m bench allocate schedule` some.

Each reports its figures as a ratio against a baseline measured in the same run: the machine
is shared and its absolute speed varies from run to run.
"""

import importlib
import sys

BENCHES = ("allocate", "schedule", "mail", "pipeline")

if __name__ == "__main__":
    for name in sys.argv[1:] or BENCHES:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.bench_{name}")
        sys.argv = [f"bench.bench_{name}"]
        module.main()
