/// What one scenario measured: counts, wall time, latencies, consumer CPU and memory.
struct BenchMeasurement: Sendable {
    var scenario: BenchScenario
    var consumers: Int
    var commands: Int
    var succeeded: Int
    var deadLettered: Int
    var seconds: Double
    var latenciesMS: [Double]
    var cpuSeconds: Double?
    var peakRSSMB: Double?
    /// CPU seconds each named server process (RabbitMQ, Redis, klaviyo-sim) spent during the scenario, in the
    /// order given by `--server-pid`.
    var serverCPUSeconds: [(name: String, seconds: Double)] = []
    /// CPU seconds of the bench process itself (publishing, collecting, and the baseline's in-process echo).
    var benchCPUSeconds: Double?

    /// Milliseconds of CPU per command of every measured process (consumers, servers, the bench), when the servers
    /// were measured.
    var allProcessesMillisecondsPerCommand: Double? {
        guard commands > 0, !serverCPUSeconds.isEmpty, let bench = benchCPUSeconds else { return nil }
        let total = (cpuSeconds ?? 0) + serverCPUSeconds.map(\.seconds).reduce(0, +) + bench
        return total / Double(commands) * 1000
    }

    /// Commands per second the machine's cores could carry if they did nothing but this work at its measured CPU
    /// cost: when the measured throughput is close to it, the scenario is bound by the machine's CPU, not by waiting.
    func cpuCeiling(cores: Int) -> Double? {
        guard let total = allProcessesMillisecondsPerCommand, total > 0 else { return nil }
        return Double(cores) * 1000 / total
    }

    /// Milliseconds of a server's CPU per command, if it was measured.
    func serverMillisecondsPerCommand(_ name: String) -> Double? {
        guard commands > 0, let entry = serverCPUSeconds.first(where: { $0.name == name }) else { return nil }
        return entry.seconds / Double(commands) * 1000
    }

    var throughput: Double { seconds > 0 ? Double(succeeded + deadLettered) / seconds : 0 }

    func percentile(_ p: Double) -> Double {
        guard !latenciesMS.isEmpty else { return 0 }
        let sorted = latenciesMS.sorted()
        let index = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[index]
    }
}
