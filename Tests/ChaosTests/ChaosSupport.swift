import Foundation
import Klaviyo
import Logging
import RelayTestSupport

/// Where the servers and binaries are (scripts/test/chaos.sh exports these).
enum ChaosEnvironment {
    static let environment = TestServers.environment
    static let enabled = environment["RELAY_CHAOS"] == "1"
    static let amqpURL = TestServers.amqpURL
    static let redisURL = TestServers.redisURL
    static let simURL = TestServers.simURL(default: "http://127.0.0.1:18489")
    /// `CHAOS_RESTARTS`: unset or `1` restarts RabbitMQ and Redis; `0` neither (servers shared with others);
    /// `rabbitmq` or `redis` only that one.
    static let restartRabbitMQ = ["1", "rabbitmq"].contains(environment["CHAOS_RESTARTS"] ?? "1")
    static let restartRedis = ["1", "redis"].contains(environment["CHAOS_RESTARTS"] ?? "1")
    static let commandCount = Int(environment["CHAOS_COMMANDS"] ?? "") ?? 5000
    static let repositoryRoot = TestServers.repositoryRoot
    static let relayBinary = TestServers.relayBinary
    static let logger = Logger(label: "chaos-test")
}

/// An integer of a klaviyo-sim stats answer (0 when absent).
func intValue(_ value: JSONValue?) -> Int {
    if case .int(let n)? = value { return Int(n) }
    return 0
}

/// A duration as seconds with one decimal (`12.3 s`).
func seconds(_ duration: Duration) -> String {
    let (whole, attoseconds) = duration.components
    return "\(whole).\(attoseconds / 100_000_000_000_000_000) s"
}
