import Foundation
import HTTPClient
import Klaviyo
import Logging
import Synchronization
import Testing

/// Where the servers and binaries are (scripts/chaos.sh exports these).
enum ChaosEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static let enabled = environment["RELAY_CHAOS"] == "1"
    static let amqpURL = environment["RELAY_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
    static let redisURL = environment["RELAY_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    static let simURL = environment["KLAVIYO_SIM_URL"] ?? "http://127.0.0.1:18489"
    /// `CHAOS_RESTARTS`: unset or `1` restarts RabbitMQ and Redis; `0` neither (servers shared with others);
    /// `rabbitmq` or `redis` only that one.
    static let restartRabbitMQ = ["1", "rabbitmq"].contains(environment["CHAOS_RESTARTS"] ?? "1")
    static let restartRedis = ["1", "redis"].contains(environment["CHAOS_RESTARTS"] ?? "1")
    static let commandCount = Int(environment["CHAOS_COMMANDS"] ?? "") ?? 5000
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let relayBinary =
        environment["RELAY_BINARY"] ?? repositoryRoot.appendingPathComponent(".build/debug/klaviyo-relay").path
    static let logger = Logger(label: "chaos-test")
}

/// Polls a condition until it holds (a bounded wait on observable state, never a blind sleep).
func eventually(
    _ what: String, timeout: Duration, every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    Issue.record("timed out after \(timeout) waiting for \(what)")
    throw ChaosFailure("timed out waiting for \(what)")
}

struct ChaosFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// How a child process ended.
final class ExitBox: Sendable {
    let value = Mutex<Int32?>(nil)
}

/// A child process (a `klaviyo-relay consume`, a `dlq` run, a services.sh restart) with its output in a file.
final class ChildProcess: Sendable {
    let process: Process
    let outputPath: String
    let exit = ExitBox()

    private init(process: Process, outputPath: String) {
        self.process = process
        self.outputPath = outputPath
    }

    static func start(
        executable: String, arguments: [String], variables: [String: String] = [:], clearRelayEnvironment: Bool = true
    ) throws -> ChildProcess {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            Issue.record("\(executable) is missing: build first (swift build)")
            throw ChaosFailure("missing \(executable)")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chaos-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if clearRelayEnvironment {
            for key in environment.keys where key.hasPrefix("RELAY_") { environment[key] = nil }
        }
        environment.merge(variables) { _, new in new }
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let child = ChildProcess(process: process, outputPath: path)
        process.terminationHandler = { ended in child.exit.value.withLock { $0 = ended.terminationStatus } }
        try process.run()
        return child
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { exit.value.withLock { $0 == nil } }
    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits for the exit and returns the status.
    func waitForExit(timeout: Duration) async throws -> Int32 {
        try await eventually("\(process.executableURL?.lastPathComponent ?? "child") \(pid) to exit", timeout: timeout)
        {
            !self.isRunning
        }
        return exit.value.withLock { $0 ?? -1 }
    }

    /// SIGTERM, then SIGKILL if it does not exit in time.
    func stop() async {
        guard isRunning else { return }
        process.terminate()
        if (try? await waitForExit(timeout: .seconds(15))) == nil {
            kill(pid, SIGKILL)
            _ = try? await waitForExit(timeout: .seconds(5))
        }
    }

    func kill9() { kill(pid, SIGKILL) }
}

/// klaviyo-sim's admin API.
struct SimAdmin: Sendable {
    let http: HTTPClient

    @discardableResult
    func call(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        let response: HTTPResponse
        do {
            response = try await http.execute(
                HTTPRequest(
                    method: method, url: ChaosEnvironment.simURL + path, headers: headers, body: body?.jsonBytes()))
        } catch {
            Issue.record("klaviyo-sim is not reachable at \(ChaosEnvironment.simURL): \(error)")
            throw error
        }
        guard (200..<300).contains(response.status) else {
            Issue.record("sim \(method) \(path) → \(response.status) \(response.bodyString)")
            throw ChaosFailure("sim \(method) \(path) → \(response.status)")
        }
        return try JSONValue.parse(response.body)
    }
}
