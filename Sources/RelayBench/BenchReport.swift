import Foundation
import Klaviyo
import Relay

/// Formats benchmark measurements as a table and a JSON report.
enum BenchReport {
    static func command(id: String, accountID: String, index: Int) -> [UInt8] {
        JSONValue.object([
            "id": .string(id), "type": "profile.upsert", "account_id": .string(accountID),
            "created_at": .string(Timestamp.now()),
            "payload": .object([
                "profile": .object([
                    "email": .string("bench\(index)@example.com"), "first_name": "Bench",
                    "properties": .object(["plan": "pro", "index": .int(Int64(index))]),
                ])
            ]),
        ]).jsonBytes()
    }

    static func format(_ value: Double, _ digits: Int = 1) -> String {
        String(format: "%.\(digits)f", value)
    }

    static func table(_ results: [BenchMeasurement]) -> String {
        var lines = [
            "| scenario | consumers | concurrency | sim latency | offered load | commands | ok | dead | commands/s | p50 ms | p99 ms | CPU s / 1k cmds | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for result in results {
            lines.append(
                "| \(result.scenario.name) | \(result.consumers) | \(result.scenario.kind == .relay ? String(result.scenario.concurrency) : "-") | \(result.scenario.latencyMS) ms | \(result.scenario.rate.map { "\($0)/s" } ?? "max") | \(result.commands) | \(result.succeeded) | \(result.deadLettered) | \(format(result.throughput, 0)) | \(format(result.percentile(0.5))) | \(format(result.percentile(0.99))) | \(result.cpuSeconds.map { format($0 / Double(result.commands) * 1000, 3) } ?? "-") | \(result.peakRSSMB.map { format($0) } ?? "-") |"
            )
        }
        if let baseline = results.first(where: { $0.scenario.kind == .brokerBaseline }), baseline.throughput > 0 {
            for result in results where result.scenario.kind == .relay && result.scenario.rate == nil {
                lines.append(
                    "\n\(result.scenario.name): \(format(result.throughput / baseline.throughput * 100, 0)) % of the broker-only baseline's throughput; p50 +\(format(result.percentile(0.5) - baseline.percentile(0.5))) ms over it"
                )
            }
        }
        lines.append(contentsOf: serverTable(results))
        lines.append(contentsOf: machineTable(results, cores: ProcessInfo.processInfo.activeProcessorCount))
        if let plain = results.first(where: { $0.scenario.name == "relay-0ms" }),
            let limited = results.first(where: { $0.scenario.name == "relay-0ms-limited" }), plain.throughput > 0
        {
            lines.append(
                "relay-0ms-limited: \(format(limited.throughput / plain.throughput * 100, 0)) % of relay-0ms's throughput (the shared rate limiter's cost: one Redis script per Klaviyo call)"
            )
        }
        return lines.joined(separator: "\n")
    }

    /// The servers' CPU per command (when `--server-pid` named them), with the broker's as a multiple of the
    /// broker-only baseline's.
    static func serverTable(_ results: [BenchMeasurement]) -> [String] {
        guard let names = results.first?.serverCPUSeconds.map(\.name), !names.isEmpty else { return [] }
        let baseline = results.first { $0.scenario.kind == .brokerBaseline }
        var lines = [
            "", "Servers' CPU per command (ms; the bench's own publishing and collecting included in every row):", "",
            "| scenario | " + names.joined(separator: " | ") + " | rabbitmq vs baseline |",
            "|---|" + String(repeating: "---|", count: names.count + 1),
        ]
        for result in results {
            let cells = names.map { result.serverMillisecondsPerCommand($0).map { format($0, 3) } ?? "-" }
            var ratio = "-"
            if let broker = result.serverMillisecondsPerCommand("rabbitmq"),
                let reference = baseline?.serverMillisecondsPerCommand("rabbitmq"), reference > 0
            {
                ratio = format(broker / reference, 2) + "x"
            }
            lines.append("| \(result.scenario.name) | " + cells.joined(separator: " | ") + " | \(ratio) |")
        }
        return lines
    }

    /// CPU per command of every process on the machine, and the throughput that CPU cost allows on its cores: a
    /// scenario near its ceiling is bound by the machine (all processes share it), not by its own waiting.
    static func machineTable(_ results: [BenchMeasurement], cores: Int) -> [String] {
        guard results.contains(where: { $0.allProcessesMillisecondsPerCommand != nil }) else { return [] }
        var lines = [
            "",
            "Every process's CPU per command (ms) and the throughput that cost allows on \(cores) cores (the consumers, "
                + "the servers and the bench share them):",
            "",
            "| scenario | consumers | servers | bench | all processes | CPU ceiling/s | measured vs ceiling |",
            "|---|---|---|---|---|---|---|",
        ]
        for result in results {
            guard let total = result.allProcessesMillisecondsPerCommand, let ceiling = result.cpuCeiling(cores: cores)
            else { continue }
            let perCommand = { (seconds: Double) in format(seconds / Double(result.commands) * 1000, 3) }
            let servers = result.serverCPUSeconds.map(\.seconds).reduce(0, +)
            lines.append(
                "| \(result.scenario.name) | \(result.cpuSeconds.map(perCommand) ?? "-") | \(perCommand(servers)) | "
                    + "\(result.benchCPUSeconds.map(perCommand) ?? "-") | \(format(total, 3)) | \(format(ceiling, 0)) | "
                    + "\(format(result.throughput / ceiling * 100, 0)) % |")
        }
        return lines
    }

    static func json(_ results: [BenchMeasurement], commands: Int) -> JSONValue {
        let baseline = results.first { $0.scenario.kind == .brokerBaseline }
        return .object([
            "generated_at": .string(Timestamp.now()),
            "machine": .object([
                "cores": .int(Int64(ProcessInfo.processInfo.activeProcessorCount)),
                "memory_gb": .double((Double(ProcessInfo.processInfo.physicalMemory) / 1e9 * 10).rounded() / 10),
            ]),
            "commands_per_scenario": .int(Int64(commands)),
            "scenarios": .array(
                results.map { result in
                    var members: [String: JSONValue] = [
                        "name": .string(result.scenario.name),
                        "kind": .string(result.scenario.kind == .relay ? "relay" : "broker_baseline"),
                        "consumer_processes": .int(Int64(result.consumers)),
                        "concurrency": .int(Int64(result.scenario.concurrency)),
                        "sim_latency_ms": .int(Int64(result.scenario.latencyMS)),
                        "offered_rate_per_second": result.scenario.rate.map { .int(Int64($0)) } ?? .null,
                        "rate_limiter": .bool(result.scenario.rateLimit),
                        "commands": .int(Int64(result.commands)), "succeeded": .int(Int64(result.succeeded)),
                        "dead_lettered": .int(Int64(result.deadLettered)), "seconds": .double(result.seconds),
                        "commands_per_second": .double(result.throughput),
                        "latency_ms": .object([
                            "p50": .double(result.percentile(0.5)), "p90": .double(result.percentile(0.9)),
                            "p99": .double(result.percentile(0.99)), "max": .double(result.percentile(1.0)),
                        ]),
                    ]
                    if let cpu = result.cpuSeconds {
                        members["cpu_seconds_per_1000_commands"] = .double(cpu / Double(result.commands) * 1000)
                    }
                    if let rss = result.peakRSSMB { members["peak_rss_mb"] = .double(rss) }
                    if !result.serverCPUSeconds.isEmpty {
                        members["server_cpu_ms_per_command"] = .object(
                            Dictionary(
                                uniqueKeysWithValues: result.serverCPUSeconds.map {
                                    ($0.name, JSONValue.double($0.seconds / Double(max(1, result.commands)) * 1000))
                                }))
                    }
                    if let bench = result.benchCPUSeconds {
                        members["bench_cpu_ms_per_command"] = .double(bench / Double(max(1, result.commands)) * 1000)
                    }
                    if let total = result.allProcessesMillisecondsPerCommand,
                        let ceiling = result.cpuCeiling(cores: ProcessInfo.processInfo.activeProcessorCount)
                    {
                        members["all_processes_cpu_ms_per_command"] = .double(total)
                        members["cpu_ceiling_per_second"] = .double(ceiling)
                    }
                    if let baseline, baseline.throughput > 0, result.scenario.kind == .relay {
                        members["throughput_vs_baseline"] = .double(result.throughput / baseline.throughput)
                    }
                    return .object(members)
                }),
        ])
    }
}
