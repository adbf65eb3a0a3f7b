#!/usr/bin/python3
"""Plots cold starts and p99 latency per simulated minute for each policy, one column per pool
size, from the CSV `packer_sim_bench --csv FILE` writes. Writes an SVG.

  build/bin/packer_sim_bench --rate 60 --csv /tmp/sim.csv
  /usr/bin/python3 bench/packer/plot_sim.py /tmp/sim.csv docs/img/packer_sim.svg

Needs python3-matplotlib (tools/install-deps.sh --models); run with /usr/bin/python3.
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    series = defaultdict(lambda: ([], [], []))  # (pool, policy) -> minutes, cold, p99
    with open(argv[1], newline="") as f:
        for row in csv.DictReader(f):
            m, c, p = series[(int(row["pool"]), row["policy"])]
            m.append(int(row["minute"]))
            c.append(int(row["cold_starts"]))
            p.append(float(row["p99_ms"]))
    pools = sorted({pool for pool, _ in series})
    policies = list(dict.fromkeys(policy for _, policy in series))
    fig, axes = plt.subplots(2, len(pools), figsize=(5 * len(pools), 7), sharex=True, squeeze=False)
    for col, pool in enumerate(pools):
        for policy in policies:
            if (pool, policy) not in series:
                continue
            m, c, p = series[(pool, policy)]
            axes[0][col].plot(m, c, label=policy, drawstyle="steps-post")
            axes[1][col].plot(m, p, label=policy)
        axes[0][col].set_title(f"pool of {pool} instances")
        axes[0][col].set_ylabel("cold starts per minute")
        axes[1][col].set_ylabel("p99 latency, ms (failure = deadline)")
        axes[1][col].set_yscale("log")
        axes[1][col].set_xlabel("simulated minute")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
