#!/usr/bin/env python3
"""Compares the single-node and cluster runs of scripts/bench/cluster.sh.

Reads DIR/<topology>-<scenario>.json (klaviyo-relay-bench reports, one scenario each) and
DIR/<topology>-<scenario>.servers.json (the servers' CPU over that scenario) for the topologies `single` and
`cluster`; prints a Markdown table with a `cluster / single` ratio row per scenario and writes the JSON report.

    scripts/bench/cluster-compare.py --scenarios baseline,relay-0ms,relay-100ms --out bench-results/cluster.json DIR
"""

import argparse
import datetime
import json
import os
import sys

TOPOLOGIES = {
    "single": "RabbitMQ 1 node (5672), Redis 1 node (6379)",
    "cluster": "RabbitMQ 3-node cluster, Redis Cluster 3 primaries + 3 replicas",
}
# (JSON key, table heading, digits)
METRICS = [
    ("commands_per_second", "commands/s", 0),
    ("p50_ms", "p50 ms", 1),
    ("p99_ms", "p99 ms", 1),
    ("consumer_cpu_seconds_per_1000_commands", "consumers' CPU s / 1k cmds", 3),
    ("server_cpu_seconds_per_1000_commands", "servers' CPU s / 1k cmds", 3),
    ("peak_rss_mb", "consumer peak RSS MB", 1),
]


def load(directory, topology, scenario):
    with open(os.path.join(directory, f"{topology}-{scenario}.json")) as handle:
        report = json.load(handle)
    with open(os.path.join(directory, f"{topology}-{scenario}.servers.json")) as handle:
        servers = json.load(handle)
    (measured,) = [entry for entry in report["scenarios"] if entry["name"] == scenario]
    commands = measured["commands"]
    return report, {
        "commands": commands,
        "consumer_processes": measured["consumer_processes"],
        "succeeded": measured["succeeded"],
        "dead_lettered": measured["dead_lettered"],
        "seconds": measured["seconds"],
        "commands_per_second": measured["commands_per_second"],
        "p50_ms": measured["latency_ms"]["p50"],
        "p99_ms": measured["latency_ms"]["p99"],
        "consumer_cpu_seconds_per_1000_commands": measured.get("cpu_seconds_per_1000_commands"),
        "server_cpu_seconds_per_1000_commands": servers["server_cpu_seconds"] / commands * 1000,
        "server_processes": servers["server_processes"],
        "peak_rss_mb": measured.get("peak_rss_mb"),
    }


def ratio(cluster, single):
    if cluster is None or single is None or single == 0:
        return None
    return cluster / single


def cell(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("directory")
    arguments = parser.parse_args()

    machine = None
    scenarios = []
    for name in arguments.scenarios.split(","):
        entry = {"name": name}
        for topology in TOPOLOGIES:
            report, figures = load(arguments.directory, topology, name)
            machine = machine or report["machine"]
            entry[topology] = figures
        entry["ratio_cluster_to_single"] = {
            key: ratio(entry["cluster"][key], entry["single"][key]) for key, _, _ in METRICS
        }
        scenarios.append(entry)

    headings = ["scenario", "servers", "consumers", "commands", "ok", "dead"] + [h for _, h, _ in METRICS]
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    for entry in scenarios:
        for topology in TOPOLOGIES:
            figures = entry[topology]
            row = [entry["name"], topology, str(figures["consumer_processes"]), str(figures["commands"]),
                   str(figures["succeeded"]), str(figures["dead_lettered"])]
            row += [cell(figures[key], digits) for key, _, digits in METRICS]
            lines.append("| " + " | ".join(row) + " |")
        row = [entry["name"], "**cluster / single**", "", "", "", ""]
        row += [cell(entry["ratio_cluster_to_single"][key], 2) for key, _, _ in METRICS]
        lines.append("| " + " | ".join(row) + " |")
    print("\n".join(lines))

    document = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine,
        "note": "everything on one host: the cluster's three Erlang VMs and six Redis processes share its cores",
        "topologies": TOPOLOGIES,
        "scenarios": scenarios,
    }
    with open(arguments.out, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    print(f"report written to {arguments.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
