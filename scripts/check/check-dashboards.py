#!/usr/bin/env python3
"""Checks deploy/grafana/*.json and deploy/prometheus/alerts.yaml (issue #11).

- Every metric a dashboard panel or an alert rule queries exists: a relay_* name must be in the /metrics scrape the
  integration test MetricsTests wrote (.build/relay-metrics-names.txt, or the file given with --names), or, for the
  few series a test run does not produce (token refreshes need OAuth), be declared in Sources/ as a metric label;
  a rabbitmq_* name must be one of RabbitMQ's own (rabbitmq_prometheus, per-object queue metrics).
- The rules parse: `promtool check rules` when promtool is installed (Debian package prometheus), and always a
  structural check with PyYAML; every rule has a runbook link to a heading of docs/operations.md that exists.

Usage: scripts/check/check-dashboards.py [--names FILE] [--require-scrape]
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# RabbitMQ's queue series (rabbitmq_prometheus, per-object metrics: labels vhost and queue).
RABBITMQ_METRICS = {
    "rabbitmq_queue_messages", "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_messages_bytes", "rabbitmq_queue_messages_ready_bytes", "rabbitmq_queue_messages_unacked_bytes",
    "rabbitmq_queue_consumers", "rabbitmq_queue_consumer_utilisation", "rabbitmq_queue_process_memory_bytes",
    "rabbitmq_queue_messages_published_total", "rabbitmq_queue_messages_delivered_total",
    "rabbitmq_queue_messages_acked_total", "rabbitmq_queue_messages_redelivered_total",
    "rabbitmq_queue_head_message_timestamp", "rabbitmq_queues", "rabbitmq_consumers",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def metric_names(expr):
    """relay_* and rabbitmq_* identifiers of a PromQL expression, quoted strings left out."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\b((?:relay|rabbitmq)_[a-zA-Z0-9_]+)\b", unquoted))


def panel_exprs(panels):
    for panel in panels:
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("title", "?"), target["expr"]
        yield from panel_exprs(panel.get("panels", []))


def declared_metrics():
    """Metric labels declared in the sources: string literals starting with relay_ beside a metric call or in the
    metric-name enums."""
    names = set()
    for path in glob.glob(os.path.join(ROOT, "Sources", "**", "*.swift"), recursive=True):
        with open(path, encoding="utf-8") as handle:
            names.update(re.findall(r'"(relay_[a-z0-9_]+)"', handle.read()))
    return names


def known(name, scraped, declared, failures_allowed_from_source):
    if name in RABBITMQ_METRICS:
        return "rabbitmq"
    base = name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            base = name[: -len(suffix)]
    if name in scraped:
        return "scrape"
    if failures_allowed_from_source and (name in declared or base in declared):
        return "source"
    return None


def anchors(markdown):
    """GitHub-style anchors of the headings of a Markdown file."""
    result = set()
    for line in markdown.splitlines():
        match = re.match(r"#+\s+(.*)", line)
        if match:
            text = match.group(1).strip().lower()
            text = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            result.add(text)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", default=os.path.join(ROOT, ".build", "relay-metrics-names.txt"))
    parser.add_argument("--require-scrape", action="store_true", help="relay_* names must all be in the scrape")
    args = parser.parse_args()
    failures = []
    if not os.path.exists(args.names):
        print(f"check-dashboards: {args.names} is missing: run the MetricsTests integration suite first", file=sys.stderr)
        return 1
    with open(args.names, encoding="utf-8") as handle:
        scraped = {line.strip() for line in handle if line.strip()}
    if not any(name.startswith("relay_klaviyo_calls_total") for name in scraped):
        failures.append(f"{args.names} has no relay_klaviyo_calls_total: not a scrape of a relay that called Klaviyo")
    declared = declared_metrics()
    from_source = set()

    def check(where, expr):
        names = metric_names(expr)
        if not names:
            failures.append(f"{where}: query names no relay_ or rabbitmq_ metric: {expr}")
        for name in sorted(names):
            source = known(name, scraped, declared, not args.require_scrape)
            if source is None:
                failures.append(f"{where}: unknown metric {name}")
            elif source == "source":
                from_source.add(name)

    dashboards = sorted(glob.glob(os.path.join(ROOT, "deploy", "grafana", "*.json")))
    if not dashboards:
        failures.append("no dashboard in deploy/grafana")
    panel_count = 0
    for path in dashboards:
        with open(path, encoding="utf-8") as handle:
            dashboard = json.load(handle)
        for title, expr in panel_exprs(dashboard.get("panels", [])):
            panel_count += 1
            check(f"{os.path.relpath(path, ROOT)} panel '{title}'", expr)

    rules_path = os.path.join(ROOT, "deploy", "prometheus", "alerts.yaml")
    with open(rules_path, encoding="utf-8") as handle:
        rules = yaml.safe_load(handle)
    with open(os.path.join(ROOT, "docs", "operations.md"), encoding="utf-8") as handle:
        runbook_anchors = anchors(handle.read())
    rule_count = 0
    for group in rules.get("groups", []):
        if not group.get("name"):
            failures.append("alerts.yaml: a group without a name")
        for rule in group.get("rules", []):
            rule_count += 1
            name = rule.get("alert") or rule.get("record")
            if not name or not isinstance(rule.get("expr"), str):
                failures.append(f"alerts.yaml: rule without alert/expr: {rule}")
                continue
            check(f"alerts.yaml rule {name}", rule["expr"])
            runbook = (rule.get("annotations") or {}).get("runbook", "")
            anchor = runbook.partition("#")[2]
            if not runbook.startswith("docs/operations.md#") or anchor not in runbook_anchors:
                failures.append(f"alerts.yaml rule {name}: runbook {runbook!r} is not a heading of docs/operations.md")
    if rule_count == 0:
        failures.append("alerts.yaml has no rules")

    promtool = shutil.which("promtool")
    if promtool:
        run = subprocess.run([promtool, "check", "rules", rules_path], capture_output=True, text=True)
        if run.returncode != 0:
            failures.append(f"promtool check rules failed:\n{run.stdout}{run.stderr}")
    else:
        print("check-dashboards: promtool not installed (apt-get install prometheus): PyYAML check only")

    for failure in failures:
        print(f"FAIL {failure}")
    if from_source:
        print("check-dashboards: declared in Sources/ but not in this scrape: " + ", ".join(sorted(from_source)))
    print(
        f"check-dashboards: {panel_count} panel queries, {rule_count} rules, {len(scraped)} scraped names: "
        + ("FAILED" if failures else "ok")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
