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

    var throughput: Double { seconds > 0 ? Double(succeeded + deadLettered) / seconds : 0 }

    func percentile(_ p: Double) -> Double {
        guard !latenciesMS.isEmpty else { return 0 }
        let sorted = latenciesMS.sorted()
        let index = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[index]
    }
}
