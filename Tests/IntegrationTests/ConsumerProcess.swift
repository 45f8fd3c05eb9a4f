import Foundation
import Synchronization
import Testing

/// A real `klaviyo-relay consume` child process, its log captured to a file.
final class ConsumerProcess: Sendable {
    let process: Process
    let logPath: String
    let exited = Mutex<(reason: Process.TerminationReason, status: Int32)?>(nil)

    private init(process: Process, logPath: String) {
        self.process = process
        self.logPath = logPath
    }

    static func start(
        variables: [String: String], arguments: [String] = ["consume", "--dev"]
    ) throws -> ConsumerProcess {
        let binary = IntegrationEnvironment.relayBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            Issue.record("relay binary missing at \(binary): build it first (swift build)")
            throw TimedOut(what: "relay binary")
        }
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID().uuidString).log")
            .path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("RELAY_") { environment[key] = nil }
        environment.merge(variables) { _, new in new }
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        let consumer = ConsumerProcess(process: process, logPath: logPath)
        process.terminationHandler = { finished in
            consumer.exited.withLock { $0 = (finished.terminationReason, finished.terminationStatus) }
        }
        try process.run()
        return consumer
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { exited.withLock { $0 == nil } }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits for the process to exit and returns how it ended.
    func waitForExit(
        timeout: Duration = .seconds(30)
    ) async throws -> (reason: Process.TerminationReason, status: Int32) {
        try await eventually("consumer \(pid) to exit", timeout: timeout) { !self.isRunning }
        return exited.withLock { $0! }
    }

    /// SIGTERM, then wait (SIGKILL if it does not exit in time).
    func stop() async {
        guard isRunning else { return }
        process.terminate()
        if (try? await waitForExit(timeout: .seconds(15))) == nil {
            kill(pid, SIGKILL)
            _ = try? await waitForExit(timeout: .seconds(5))
        }
    }

    /// SIGKILL.
    func kill9() {
        kill(pid, SIGKILL)
    }
}
