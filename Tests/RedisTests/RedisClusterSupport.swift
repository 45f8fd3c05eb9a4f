import Foundation
import Logging
import Redis
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway Redis Cluster (3 primaries + 3 replicas) on its own ports, started by
/// `scripts/dev/redis-cluster.sh` for the suites that carry ``RedisClusterTrait`` and stopped after them.
enum RedisTestCluster {
    /// Ports 7101-7106: clear of the development cluster (7001-7006) and of the single Redis.
    static let basePort = 7101
    static let ports = Array(basePort..<(basePort + 6))

    static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-cli")
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var url: String {
        "redis-cluster://" + ports.prefix(3).map { "127.0.0.1:\($0)" }.joined(separator: ",")
    }

    /// Runs the cluster script (`start`, `stop`, `status`); returns its stdout, throws on a non-zero exit.
    @discardableResult
    static func script(_ command: String) throws -> String {
        try run(
            repositoryRoot.appendingPathComponent("scripts/dev/redis-cluster.sh").path,
            [command, "--base-port", String(basePort)])
    }

    /// Runs a program and returns its stdout. The output goes through a file, not a pipe: the Redis daemons the
    /// script starts inherit the child's descriptors, and a pipe they hold open would never reach end-of-file.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("redis-cluster-\(UUID()).out")
        guard FileManager.default.createFile(atPath: outputURL.path, contents: nil) else {
            throw RedisError(code: .connectionFailed, message: "cannot create \(outputURL.path)", isRetriable: false)
        }
        defer { try? FileManager.default.removeItem(at: outputURL) }
        let output = try FileHandle(forWritingTo: outputURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try output.close()
        let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw RedisError(
                code: .connectionFailed, message: "\(executable) \(arguments) exited \(process.terminationStatus)",
                isRetriable: false)
        }
        return text
    }

    /// The pid of the node on `port` (from the pid file the script has it write).
    static func pid(ofNodeOn port: Int) throws -> pid_t {
        let directory = repositoryRoot.appendingPathComponent("var/redis-cluster-\(basePort)/\(port)/redis.pid")
        let text = try String(contentsOf: directory, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = pid_t(text) else {
            throw RedisError(code: .connectionFailed, message: "no pid for node \(port)", isRetriable: false)
        }
        return pid
    }

    static var logger: Logger {
        var logger = Logger(label: "redis-cluster-tests")
        logger.logLevel = .warning
        return logger
    }

    /// A cluster client on the test cluster.
    static func makeClient(retryTimeout: Duration = .seconds(30)) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configuration.clusterRetryTimeout = retryTimeout
        return RedisClient(configuration: configuration, logger: logger)
    }

    /// A plain single-server client on one node (to look behind the cluster client's back).
    static func node(_ port: Int) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(port)")
        configuration.poolSize = 1
        return RedisClient(configuration: configuration, logger: logger)
    }

    /// `CLUSTER INFO` field of one node.
    static func info(_ port: Int, _ field: String) async throws -> String? {
        let node = try node(port)
        defer { Task { await node.shutdown() } }
        let text = try await node.send(["CLUSTER", "INFO"]).string ?? ""
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
            return String(line.dropFirst(field.count + 1))
        }
        return nil
    }

    /// `CLUSTER MYID` of one node.
    static func id(_ port: Int) async throws -> String {
        let node = try node(port)
        defer { Task { await node.shutdown() } }
        return try await node.send(["CLUSTER", "MYID"]).string ?? ""
    }

    /// The port of the primary serving `slot`, as node `askedPort` sees it (`CLUSTER SLOTS`).
    static func owner(ofSlot slot: Int, askedPort: Int = basePort) async throws -> Int? {
        let node = try node(askedPort)
        defer { Task { await node.shutdown() } }
        let reply = try await node.send(["CLUSTER", "SLOTS"])
        for range in reply.array ?? [] {
            guard let fields = range.array, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                (start...end).contains(Int64(slot)), let port = fields[2].array?[1].int
            else { continue }
            return Int(port)
        }
        return nil
    }

    /// The ports of the nodes that are primaries now (`ROLE`).
    static func primaryPorts() async throws -> [Int] {
        var primaries: [Int] = []
        for port in ports {
            guard let node = try? node(port) else { continue }
            let role = try? await node.send(["ROLE"]).array?.first?.string
            await node.shutdown()
            if role == "master" { primaries.append(port) }
        }
        return primaries
    }

    /// Polls `condition` every 50 ms until it holds; throws after `timeout`.
    static func waitUntil(
        _ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if (try? await condition()) == true { return }
            guard ContinuousClock.now < deadline else {
                throw RedisError(code: .timeout, message: "timed out waiting until \(what)", isRetriable: false)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Starts any node that is down (a killed one rejoins as a replica) and waits until every node is up and
    /// the cluster state is ok on each of them, with every slot served.
    static func ensureHealthy() async throws {
        try script("start")
        try await waitUntil("the cluster is ok on every node") {
            for port in ports {
                guard try await info(port, "cluster_state") == "ok",
                    try await info(port, "cluster_slots_ok") == "16384"
                else { return false }
            }
            return true
        }
    }
}

/// Starts the test cluster before the suite and stops it after (once, around all the suite's tests).
struct RedisClusterTrait: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try RedisTestCluster.script("start")
        do {
            try await function()
        } catch {
            _ = try? RedisTestCluster.script("stop")
            throw error
        }
        try RedisTestCluster.script("stop")
    }
}

extension Trait where Self == RedisClusterTrait {
    /// Runs the suite against a Redis Cluster of its own (see ``RedisTestCluster``).
    static var redisCluster: Self { Self() }
}
