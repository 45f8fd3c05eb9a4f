import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Logging
import Relay
import RelayTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Where the servers and binaries are (scripts/test/hostile.sh exports these). The suite runs only with
/// `RELAY_HOSTILE=1`, so the plain `swift test` step of the test command does not run it a second time.
enum HostileEnvironment {
    static let environment = TestServers.environment
    static let enabled = environment["RELAY_HOSTILE"] == "1"
    static let amqpURL = TestServers.amqpURL
    static let redisURL = TestServers.redisURL
    /// A klaviyo-sim of its own, started with `--rate-limits on`.
    static let simURL = TestServers.simURL(default: "http://127.0.0.1:18589")
    static let repositoryRoot = TestServers.repositoryRoot
    static let relayBinary = TestServers.relayBinary
    static let logger = Logger(label: "hostile-test")
}

/// A probe that did not hold (the row says what was observed).
struct ProbeFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A value behind a lock that escaping closures can share.
final class Locked<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) throws -> sending R) rethrows -> R {
        try storage.withLock(body)
    }
    var value: Value { storage.withLock { $0 } }
}

/// A `klaviyo-relay` child process (``ChildProcess``) of the hostile suite.
typealias Child = ChildProcess

extension ChildProcess {
    /// Starts `klaviyo-relay <arguments>` with `variables` over the test's environment without its `RELAY_*`.
    static func start(arguments: [String], variables: [String: String]) throws -> ChildProcess {
        try start(
            executable: HostileEnvironment.relayBinary, arguments: arguments, variables: variables, label: "hostile")
    }
}

/// A TCP port nothing listens on right now (bound to port 0, read back, closed).
func freePort() throws -> Int {
    let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socketFD) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) }
    }
    guard bound == 0 else { throw ProbeFailure("no free port") }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// One received message, with when it arrived.
struct Received: Sendable {
    var delivery: AMQPDelivery
    var at: ContinuousClock.Instant

    var isDeadLetter: Bool { delivery.properties.headers[DeadLetter.Header.errorCode] != nil }
    var code: String { delivery.properties.headers[DeadLetter.Header.errorCode]?.stringValue ?? "" }
    var body: JSONValue? { try? JSONValue.parse(delivery.body) }
    /// The command id: the result's `command_id`, or the dead letter's id header, body id or message id.
    var commandID: String {
        if isDeadLetter {
            return delivery.properties.headers[DeadLetter.Header.commandID]?.stringValue ?? body?["id"]?.stringValue
                ?? delivery.properties.messageID ?? "?"
        }
        return body?["command_id"]?.stringValue ?? "?"
    }
    var result: CommandResult? { body.flatMap(CommandResult.init(json:)) }
}

/// Messages a queue consumer received.
final class Mailbox: Sendable {
    let items = Mutex<[Received]>([])
    var all: [Received] { items.withLock { $0 } }
    func deadLetters(_ id: String) -> [Received] { all.filter { $0.isDeadLetter && $0.commandID == id } }
    func results(_ id: String) -> [Received] { all.filter { !$0.isDeadLetter && $0.commandID == id } }
    func settled(_ id: String) -> Bool { all.contains { $0.commandID == id } }
}

/// The 95th percentile (nearest rank) of durations, zero for none.
func percentile95(_ values: [Duration]) -> Duration {
    guard !values.isEmpty else { return .zero }
    let sorted = values.sorted()
    let rank = Int((Double(sorted.count) * 0.95).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

extension Duration {
    /// Milliseconds, for the table.
    var ms: String { "\(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000) ms" }
}

/// The telling line of a command's output: a crash's `Fatal error`, an `error:` line, or its last 200 characters.
func gist(_ output: String) -> String {
    let lines = output.split(separator: "\n").map(String.init)
    for marker in ["Fatal error", "💣", "Illegal instruction", "error:"] {
        if let line = lines.first(where: { $0.contains(marker) }) { return String(line.prefix(240)) }
    }
    return String(output.suffix(200))
}
