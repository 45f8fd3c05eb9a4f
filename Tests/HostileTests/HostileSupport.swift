import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Logging
import Relay
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Where the servers and binaries are (scripts/hostile.sh exports these). The suite runs only with
/// `RELAY_HOSTILE=1`, so the plain `swift test` step of the test command does not run it a second time.
enum HostileEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static let enabled = environment["RELAY_HOSTILE"] == "1"
    static let amqpURL = environment["RELAY_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
    static let redisURL = environment["RELAY_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    /// A klaviyo-sim of its own, started with `--rate-limits on`.
    static let simURL = environment["KLAVIYO_SIM_URL"] ?? "http://127.0.0.1:18589"
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let relayBinary =
        environment["RELAY_BINARY"] ?? repositoryRoot.appendingPathComponent(".build/debug/klaviyo-relay").path
    static let logger = Logger(label: "hostile-test")
}

/// A probe that did not hold (the row says what was observed).
struct ProbeFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Polls until `condition` holds or `timeout` passes; answers whether it held. A probe turns `false` into a FAIL
/// row, so a timeout here is an observation, not an immediate test failure.
func waitUntil(
    timeout: Duration, every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: interval)
    }
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

/// How a child process ended.
final class ExitStatus: Sendable {
    let value = Mutex<Int32?>(nil)
}

/// A child process (`klaviyo-relay consume`, `serve`, `dlq`, `connections`) with its output in a file.
final class Child: Sendable {
    let process: Process
    let outputPath: String
    let exit = ExitStatus()

    private init(process: Process, outputPath: String) {
        self.process = process
        self.outputPath = outputPath
    }

    static func start(arguments: [String], variables: [String: String]) throws -> Child {
        let executable = HostileEnvironment.relayBinary
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            Issue.record("\(executable) is missing: build first (swift build)")
            throw ProbeFailure("missing \(executable)")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString).log")
            .path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("RELAY_") { environment[key] = nil }
        environment.merge(variables) { _, new in new }
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let child = Child(process: process, outputPath: path)
        process.terminationHandler = { ended in child.exit.value.withLock { $0 = ended.terminationStatus } }
        try process.run()
        return child
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { exit.value.withLock { $0 == nil } }
    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    /// How it ended: `nil` while running; a status, or a signal number for a crash (trap: SIGILL 4, SIGTRAP 5).
    var exitDescription: String {
        guard let status = exit.value.withLock({ $0 }) else { return "running" }
        return process.terminationReason == .uncaughtSignal ? "killed by signal \(status)" : "exited \(status)"
    }

    /// Waits for the exit and returns the status (-1 when it did not exit in time; it is then killed).
    func waitForExit(timeout: Duration) async -> Int32 {
        guard await waitUntil(timeout: timeout, { !self.isRunning }) else {
            kill(pid, SIGKILL)
            return -1
        }
        return exit.value.withLock { $0 ?? -1 }
    }

    /// SIGTERM, then SIGKILL if it does not exit in time.
    func stop() async {
        guard isRunning else { return }
        process.terminate()
        if await waitUntil(timeout: .seconds(15), { !self.isRunning }) == false {
            kill(pid, SIGKILL)
            _ = await waitUntil(timeout: .seconds(5)) { !self.isRunning }
        }
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
