public import Foundation
public import Synchronization
import Testing

/// A child process of a test (`klaviyo-relay consume`, `serve`, `dlq`, a script) with its output in a file: the one
/// way the test targets launch processes.
public final class ChildProcess: Sendable {
    /// The running process.
    public let process: Process
    /// The file holding its stdout and stderr.
    public let outputPath: String
    /// How it ended; `nil` while it runs.
    public let exited = Mutex<(reason: Process.TerminationReason, status: Int32)?>(nil)

    private init(process: Process, outputPath: String) {
        self.process = process
        self.outputPath = outputPath
    }

    /// Starts `executable` with `arguments`; the environment is the test's, without its `RELAY_*` variables when
    /// `clearRelayEnvironment`, plus `variables`; stdin is `/dev/null`. A missing executable records an issue.
    public static func start(
        executable: String = TestServers.relayBinary, arguments: [String], variables: [String: String] = [:],
        clearRelayEnvironment: Bool = true, label: String = "child"
    ) throws -> ChildProcess {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            Issue.record("\(executable) is missing: build first (swift build)")
            throw TimedOut(what: "\(executable) (missing)")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString).log")
            .path
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
        process.terminationHandler = { ended in
            child.exited.withLock { $0 = (ended.terminationReason, ended.terminationStatus) }
        }
        try process.run()
        return child
    }

    /// The process id.
    public var pid: Int32 { process.processIdentifier }
    /// Whether it still runs.
    public var isRunning: Bool { exited.withLock { $0 == nil } }
    /// Everything it wrote so far.
    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    /// How it ended: `running`, `exited <status>`, or `killed by signal <n>` (a trap: SIGILL 4, SIGTRAP 5).
    public var exitDescription: String {
        guard let ending = exited.withLock({ $0 }) else { return "running" }
        return ending.reason == .uncaughtSignal ? "killed by signal \(ending.status)" : "exited \(ending.status)"
    }

    /// Waits for the exit and returns how it ended; records an issue and throws ``TimedOut`` when it does not exit
    /// in time (it keeps running).
    @discardableResult
    public func waitForExit(
        timeout: Duration = .seconds(30)
    ) async throws -> (reason: Process.TerminationReason, status: Int32) {
        let name = process.executableURL?.lastPathComponent ?? "child"
        try await eventually("\(name) \(pid) to exit", timeout: timeout) { !self.isRunning }
        return exited.withLock { $0! }
    }

    /// Waits for the exit and returns the status, or -1 when it did not exit in time (it is then SIGKILLed).
    public func exitStatus(within timeout: Duration) async -> Int32 {
        guard await waitUntil(timeout: timeout, { !self.isRunning }) else {
            kill(pid, SIGKILL)
            return -1
        }
        return exited.withLock { $0?.status ?? -1 }
    }

    /// SIGTERM, then SIGKILL if it does not exit within 15 s. With `reportingSlowExit` (the default) a process that
    /// needed the SIGKILL, or did not die even then, is a recorded issue: graceful shutdown is something tests check.
    public func stop(reportingSlowExit: Bool = true) async {
        guard isRunning else { return }
        process.terminate()
        if await waitUntil(timeout: .seconds(15), { !self.isRunning }) == false {
            if reportingSlowExit { Issue.record("\(pid) did not exit within 15 s of SIGTERM: SIGKILL") }
            kill(pid, SIGKILL)
            if await waitUntil(timeout: .seconds(5), { !self.isRunning }) == false, reportingSlowExit {
                Issue.record("\(pid) did not exit within 5 s of SIGKILL")
            }
        }
    }

    /// SIGKILL, at once.
    public func kill9() {
        kill(pid, SIGKILL)
    }
}
