"""Run every benchmark in turn (``make bench``). Each prints its table and writes JSON to
benchmarks/results/. Expect about an hour on a 2-core machine (reward_quality.py alone takes
30-40 minutes, SAC against SB3 about 20)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["solve_vs_sb3.py", "time_to_solve.py", "throughput.py", "reward_cost.py", "reward_quality.py",
              "sac_vs_sb3.py", "solve_cost.py", "screening_cost.py"]

if __name__ == "__main__":
    failed = []
    for name in BENCHMARKS + [b for b in ("sandbox_overhead.py", "preference_queries.py") if (HERE / b).exists()]:
        print(f"\n=== {name}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)], cwd=HERE).returncode != 0:
            failed.append(name)
    sys.exit(1 if failed else 0)
