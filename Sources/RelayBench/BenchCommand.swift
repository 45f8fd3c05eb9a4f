import AMQP
import ArgumentParser
import Foundation
import HTTPClient
import Klaviyo
import Relay

/// `klaviyo-relay-bench`: measures end-to-end throughput and latency of `profile.upsert` through
/// `klaviyo-relay consume` processes against `klaviyo-sim`, next to a broker-only baseline measured in the same run;
/// prints a table and writes a JSON report. A separate executable: the harness does not ship in the production binary.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "klaviyo-relay-bench", abstract: "Benchmark the relay against klaviyo-sim (table + JSON report).")

    @Flag(
        help: """
            Development defaults: a fixed, public encryption key when RELAY_ENCRYPTION_KEY is unset, text logs \
            (passed on to the consumers).
            """)
    var dev = false

    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical); overrides RELAY_LOG_LEVEL.")
    var logLevel: String?

    @Option(help: "The klaviyo-relay binary the consumers run (default: the one beside this executable).")
    var relayBinary: String?

    @Option(help: "Commands per scenario.")
    var commands = 20_000

    @Option(help: "Base URL of a running klaviyo-sim.")
    var simURL = "http://127.0.0.1:8089"

    @Option(
        help: """
            Scenarios, comma-separated: baseline, relay-0ms, relay-0ms-limited (relay-0ms with the shared rate \
            limiter on), relay-100ms, relay-paced.
            """)
    var scenarios = "baseline,relay-0ms,relay-0ms-limited,relay-100ms,relay-paced"

    @Option(
        help: """
            Accounts the commands are spread over, round-robin (enough that Klaviyo's per-account limits do not \
            bind, so the rate-limited scenario measures the limiter's cost).
            """)
    var accounts = 100

    @Option(help: "Publish rate (commands/s) of the relay-paced scenario, which measures latency below saturation.")
    var pacedRate = 500

    @Option(help: "Consumer processes per relay scenario.")
    var consumers = 1

    @Option(help: "RELAY_CONCURRENCY of the consumers in the zero-latency scenario.")
    var concurrency = 64

    @Option(
        help: """
            Run the scenarios this many times, interleaved: tables and report show each scenario's median run and \
            every relay run against the baseline of its own round (the machine's speed drifts between runs).
            """)
    var rounds = 1

    @Option(help: "Where to write the JSON report.")
    var report = "bench-results/report.json"

    @Option(help: "Give up on a scenario after this long, e.g. 300s.")
    var timeout = "300s"

    @Option(
        help: ArgumentHelp(
            "A server process whose CPU each scenario reports per command, as name=pid (repeatable), e.g.",
            discussion: "--server-pid rabbitmq=1234 --server-pid redis=5678 --server-pid klaviyo-sim=91011"))
    var serverPid: [String] = []

    func run() async throws {
        let runtime = try BenchRuntime.make(dev: dev, logLevel: logLevel)
        let binary =
            relayBinary
            ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("klaviyo-relay").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no klaviyo-relay binary at \(binary) (build it, or pass --relay-binary)")
        }
        guard let limit = RelayConfiguration.parseDuration(timeout) else { throw ValidationError("bad --timeout") }
        let names = scenarios.split(separator: ",").map { String($0) }
        var plans: [BenchScenario] = []
        for name in names {
            switch name {
            case "baseline":
                plans.append(.init(name: name, kind: .brokerBaseline, latencyMS: 0, concurrency: concurrency))
            case "relay-0ms": plans.append(.init(name: name, kind: .relay, latencyMS: 0, concurrency: concurrency))
            case "relay-0ms-limited":
                plans.append(
                    .init(name: name, kind: .relay, latencyMS: 0, concurrency: concurrency, rateLimit: true))
            case "relay-100ms": plans.append(.init(name: name, kind: .relay, latencyMS: 100, concurrency: 64))
            case "relay-paced":
                plans.append(.init(name: name, kind: .relay, latencyMS: 0, concurrency: concurrency, rate: pacedRate))
            default: throw ValidationError("unknown scenario \(name)")
            }
        }
        var harness = BenchHarness(
            runtime: runtime, relayBinary: binary, simURL: simURL, commands: commands, consumers: consumers,
            timeout: limit, dev: dev, accounts: accounts)
        harness.servers = try serverPid.map { entry in
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let pid = Int32(parts[1]), pid > 0 else {
                throw ValidationError("--server-pid wants name=pid, got \"\(entry)\"")
            }
            guard ProcessStats.cpuSeconds(pid: pid) != nil else {
                throw ValidationError("--server-pid \(entry): no process \(pid)")
            }
            return (name: parts[0], pid: pid)
        }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        let measured = try await runtime.withAMQP { () -> [[BenchMeasurement]] in
            var measured: [[BenchMeasurement]] = []
            for round in 1...rounds {
                var results: [BenchMeasurement] = []
                for plan in plans {
                    let label = rounds > 1 ? " (round \(round) of \(rounds))" : ""
                    FileHandle.standardError.write(
                        Data("bench: running \(plan.name) with \(commands) commands\(label)…\n".utf8))
                    results.append(try await harness.run(plan))
                }
                measured.append(results)
            }
            return measured
        }
        let repeated = BenchRounds(rounds: measured)
        let results = repeated.medianRuns
        print(([BenchReport.table(results)] + repeated.table()).joined(separator: "\n"))
        var document = BenchReport.json(results, commands: commands)
        if measured.count > 1, case .object(var members) = document {
            members["rounds"] = repeated.json()
            document = .object(members)
        }
        let url = URL(fileURLWithPath: report)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(document.jsonBytes()).write(to: url)
        print("report written to \(report)")
    }
}
