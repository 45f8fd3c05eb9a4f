import Foundation
import Klaviyo

/// The same scenarios run several times, interleaved (`--rounds`).
///
/// On a shared machine whose speed drifts by the minute (identical runs differ by ±15 % here), a relay run is
/// compared with the baseline run of its own round, minutes apart at most, and the median of those same-round
/// ratios is the figure to quote; the spread of the rounds shows how far one run can be trusted.
struct BenchRounds {
    /// One list of measurements per round, in the order the scenarios ran.
    let rounds: [[BenchMeasurement]]

    /// The median of `values` (the lower middle one for an even count); 0 when empty.
    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        return values.sorted()[(values.count - 1) / 2]
    }

    /// The scenario names, in the order of the first round.
    var names: [String] { rounds.first?.map(\.scenario.name) ?? [] }

    /// Every round's measurement of one scenario.
    func runs(of name: String) -> [BenchMeasurement] {
        rounds.compactMap { round in round.first { $0.scenario.name == name } }
    }

    /// Per scenario, the round with the median throughput: every figure of a row then comes from one run.
    var medianRuns: [BenchMeasurement] {
        names.compactMap { name in
            let runs = runs(of: name).sorted { $0.throughput < $1.throughput }
            return runs.isEmpty ? nil : runs[(runs.count - 1) / 2]
        }
    }

    /// A per-round figure of a relay scenario relative to the same round's baseline, one per round that ran both.
    func ratios(of name: String, _ figure: (BenchMeasurement) -> Double?) -> [Double] {
        rounds.compactMap { round in
            guard let run = round.first(where: { $0.scenario.name == name }),
                let baseline = round.first(where: { $0.scenario.kind == .brokerBaseline }),
                let value = figure(run), let reference = figure(baseline), reference > 0
            else { return nil }
            return value / reference
        }
    }

    private func consumerMilliseconds(_ run: BenchMeasurement) -> Double? {
        run.cpuSeconds.map { $0 / Double(max(1, run.commands)) * 1000 }
    }

    /// The rounds table: each relay scenario's throughput against its round's baseline, its consumer CPU per
    /// command and the broker's CPU against the baseline's, per round and as medians.
    func table() -> [String] {
        guard rounds.count > 1 else { return [] }
        let list = { (values: [Double], digits: Int) in
            values.map { BenchReport.format($0, digits) }.joined(separator: ", ")
        }
        var lines = [
            "",
            "\(rounds.count) rounds, interleaved; each relay run is compared with the baseline run of its own round "
                + "(medians in bold):",
            "",
            "| scenario | commands/s per round | vs baseline per round | consumer CPU ms/command | rabbitmq vs baseline |",
            "|---|---|---|---|---|",
        ]
        for name in names {
            let runs = runs(of: name)
            let throughputs = runs.map(\.throughput)
            var cells = ["\(list(throughputs, 0)) (**\(BenchReport.format(Self.median(throughputs), 0))**)"]
            let isRelay = runs.first?.scenario.kind == .relay
            let vsBaseline = isRelay ? ratios(of: name) { $0.throughput } : []
            cells.append(
                vsBaseline.isEmpty
                    ? "-"
                    : "\(list(vsBaseline.map { $0 * 100 }, 0)) % (**\(BenchReport.format(Self.median(vsBaseline) * 100, 0)) %**)"
            )
            let cpu = runs.compactMap(consumerMilliseconds)
            cells.append(cpu.isEmpty ? "-" : "\(list(cpu, 3)) (**\(BenchReport.format(Self.median(cpu), 3))**)")
            let broker = isRelay ? ratios(of: name) { $0.serverMillisecondsPerCommand("rabbitmq") } : []
            cells.append(
                broker.isEmpty ? "-" : "\(list(broker, 2)) (**\(BenchReport.format(Self.median(broker), 2))x**)")
            lines.append("| \(name) | " + cells.joined(separator: " | ") + " |")
        }
        return lines
    }

    /// The rounds' figures for the JSON report (`rounds`), per scenario: every round's value and the median.
    func json() -> JSONValue {
        func series(_ values: [Double]) -> JSONValue {
            .object(["per_round": .array(values.map { .double($0) }), "median": .double(Self.median(values))])
        }
        return .object([
            "count": .int(Int64(rounds.count)),
            "scenarios": .array(
                names.map { name in
                    let runs = runs(of: name)
                    var members: [String: JSONValue] = [
                        "name": .string(name), "commands_per_second": series(runs.map(\.throughput)),
                    ]
                    let cpu = runs.compactMap(consumerMilliseconds)
                    if !cpu.isEmpty { members["consumer_cpu_ms_per_command"] = series(cpu) }
                    let all = runs.compactMap(\.allProcessesMillisecondsPerCommand)
                    if !all.isEmpty { members["all_processes_cpu_ms_per_command"] = series(all) }
                    if runs.first?.scenario.kind == .relay {
                        let vsBaseline = ratios(of: name) { $0.throughput }
                        if !vsBaseline.isEmpty { members["throughput_vs_baseline"] = series(vsBaseline) }
                        let broker = ratios(of: name) { $0.serverMillisecondsPerCommand("rabbitmq") }
                        if !broker.isEmpty { members["rabbitmq_cpu_vs_baseline"] = series(broker) }
                    }
                    return .object(members)
                }),
        ])
    }
}
