import ArgumentParser
import Hummingbird
import KlaviyoSimCore
import Logging

/// `klaviyo-sim`: a Klaviyo API simulator for tests, demos and benchmarks.
@main
struct KlaviyoSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "klaviyo-sim",
        abstract: "Simulates Klaviyo's REST API (revision 2025-10-15) with an admin API under /_sim.")

    @Option(help: "Interface to bind.") var host = "127.0.0.1"
    @Option(help: "Port to bind (0 = pick a free port and log it).") var port = 8089
    @Option(name: .customLong("latency-ms"), help: "Latency added to every API call, in milliseconds.")
    var latencyMs = 0
    @Option(name: .customLong("seed-account"), help: "ACCOUNT_ID:pk_KEY[:Name], repeatable.")
    var seedAccounts: [String] = []
    @Option(name: .customLong("record-capacity"), help: "Recorded-requests ring buffer capacity.")
    var recordCapacity = 100_000
    @Option(name: .customLong("rate-limits"), help: "Enforce per-operation rate limits: on or off.")
    var rateLimits = "on"
    @Option(name: .customLong("access-token-ttl"), help: "OAuth access token lifetime, seconds.")
    var accessTokenTTL = 3600
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("Unknown --log-level \(logLevel).") }
        guard rateLimits == "on" || rateLimits == "off" else {
            throw ValidationError("--rate-limits must be on or off.")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535.") }
        for s in seedAccounts where SimConfiguration.parseSeedAccount(s) == nil {
            throw ValidationError("--seed-account must be ACCOUNT_ID:pk_KEY[:Name], got \(s).")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "klaviyo-sim")
        var config = SimConfiguration()
        config.host = host
        config.port = port
        config.latency = .milliseconds(latencyMs)
        config.recordCapacity = recordCapacity
        config.rateLimitsEnabled = rateLimits == "on"
        config.accessTokenTTL = .seconds(accessTokenTTL)
        config.seedAccounts = seedAccounts.compactMap(SimConfiguration.parseSeedAccount)
        let simulator = KlaviyoSimulator(configuration: config, logger: logger)
        let bound = config
        let app = simulator.makeApplication { channel in
            let port = channel.localAddress?.port ?? bound.port
            logger.info(
                "listening",
                metadata: [
                    "sim.host": "\(bound.host)", "sim.port": "\(port)", "sim.url": "http://\(bound.host):\(port)",
                ])
        }
        try await app.runService()
    }
}
