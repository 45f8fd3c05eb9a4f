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
