"""Run the benchmarks: `python -m bench` runs them all, `python -m bench allocate schedule` some.

Each reports its figures as a ratio against a baseline measured in the same run: the machine
is shared and its absolute speed varies from run to run.
"""

import importlib
import itertools
import sys

BENCHES = ("allocate", "schedule", "mail", "dkim", "pipeline", "report", "manifests", "console")
# `fuzz`, `shapes` and `scale` run only when named: fuzz and shapes run as long as asked, scale sends a
# million-line session (about 20 minutes)

if __name__ == "__main__":
    names = list(itertools.takewhile(lambda arg: not arg.startswith("-"), sys.argv[1:]))
    options = sys.argv[1 + len(names):]  # `python -m bench fuzz --seconds 60`: the options of the benches named
    for name in names or BENCHES:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.bench_{name}")
        sys.argv = [f"bench.bench_{name}", *options]
        module.main()
