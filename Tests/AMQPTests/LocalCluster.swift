import AMQP
import Foundation
import Testing

/// The local 3-node RabbitMQ cluster of `scripts/dev/rabbitmq-cluster.sh`, for the suites that need one.
///
/// ``scope`` (a suite trait) starts the cluster once around its suite (reusing a running one) and stops it afterwards
/// if it started it: three nodes are heavy on a small machine. `RELAY_AMQP_CLUSTER_URL` names an existing cluster
/// instead (nothing is started or stopped; node control then still goes through the script's default nodes).
struct LocalCluster: Sendable {
    /// The comma-separated AMQP URLs of the three nodes (a `RELAY_AMQP_URL` for the cluster).
    let urls: String
    /// The nodes, in order (node 1 first).
    let nodes: [AMQPConfiguration.Node]

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/dev/rabbitmq-cluster.sh").path

    /// Whether `rabbitmq-server` is installed (the only reason to skip the cluster suites).
    static var isInstalled: Bool {
        ["/usr/sbin/rabbitmq-server", "/usr/lib/rabbitmq/bin/rabbitmq-server"].contains {
            FileManager.default.isExecutableFile(atPath: $0)
        } || ProcessInfo.processInfo.environment["RELAY_AMQP_CLUSTER_URL"] != nil
    }

    @TaskLocal static var active: LocalCluster?

    /// The cluster of the running suite.
    static var current: LocalCluster {
        get throws {
            guard let active else { throw ClusterScriptFailure(description: "no cluster: add LocalCluster.scope") }
            return active
        }
    }

    /// Stops node `index` (1-3): `stop_app` (its Erlang VM stays up, its connections close), or the whole node.
    func stopNode(_ index: Int, hard: Bool = false) async throws {
        _ = try await Self.run(["stop-node", "\(index)"] + (hard ? ["--hard"] : []))
    }

    /// Brings node `index` back and waits until it runs.
    func startNode(_ index: Int) async throws {
        _ = try await Self.run(["start-node", "\(index)"])
    }

    /// The Erlang node name of the leader of quorum queue `queue` (vhost `/`), e.g. `rabbit2@localhost`.
    func leader(of queue: String) async throws -> String {
        try await Self.run(["leader", queue]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The suite trait that provides the cluster to its tests (``active``).
    static var scope: Scope { Scope() }

    struct Scope: SuiteTrait, TestScoping {
        func provideScope(
            for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
        ) async throws {
            if let urls = ProcessInfo.processInfo.environment["RELAY_AMQP_CLUSTER_URL"] {
                try await LocalCluster.$active.withValue(LocalCluster(urls: urls), operation: function)
                return
            }
            let wasRunning = (try? await LocalCluster.run(["status"])) != nil
            let output = try await LocalCluster.run(["start"])
            guard let urls = output.split(separator: "\n").last.map(String.init), urls.hasPrefix("amqp") else {
                throw ClusterScriptFailure(description: "rabbitmq-cluster.sh start printed no URL list: \(output)")
            }
            let result: Result<Void, any Error>
            do {
                try await LocalCluster.$active.withValue(LocalCluster(urls: urls), operation: function)
                result = .success(())
            } catch {
                result = .failure(error)
            }
            if !wasRunning { _ = try? await LocalCluster.run(["stop"]) }
            try result.get()
        }
    }

    init(urls: String) throws {
        self.urls = urls
        nodes = try AMQPConfiguration(url: urls).nodes
    }

    /// Runs the cluster script with `arguments`; returns its standard output, throws if it fails.
    @discardableResult
    static func run(_ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in continuation.resume(returning: process.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard status == 0 else {
            throw ClusterScriptFailure(
                description: "rabbitmq-cluster.sh \(arguments.joined(separator: " ")) exited \(status): \(stderr)")
        }
        return stdout
    }
}

struct ClusterScriptFailure: Error, CustomStringConvertible {
    var description: String
}
