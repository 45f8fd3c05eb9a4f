public import Foundation

/// Where the real servers and binaries of a test run are. The test command (scripts/test.sh, scripts/test/chaos.sh,
/// scripts/test/hostile.sh) starts RabbitMQ, Redis and a klaviyo-sim and exports these; a missing server fails the
/// tests loudly (they never skip).
public enum TestServers {
    /// The process environment the values are read from.
    public static let environment = ProcessInfo.processInfo.environment
    /// `RELAY_AMQP_URL`, default the local broker.
    public static let amqpURL = environment["RELAY_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
    /// `RELAY_REDIS_URL`, default the local Redis.
    public static let redisURL = environment["RELAY_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    /// The repository root (the directory holding Package.swift).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// `RELAY_BINARY`, default the debug build's `klaviyo-relay`.
    public static let relayBinary =
        environment["RELAY_BINARY"] ?? repositoryRoot.appendingPathComponent(".build/debug/klaviyo-relay").path

    /// `KLAVIYO_SIM_URL`, or `fallback` (each suite's script starts its simulator on its own port).
    public static func simURL(default fallback: String) -> String {
        environment["KLAVIYO_SIM_URL"] ?? fallback
    }
}
