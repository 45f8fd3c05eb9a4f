import Foundation
import Logging
import Redis
import RelayTestSupport
import Testing

/// Where the clusters, the simulator and the binaries of the cluster chaos test are (scripts/test/cluster-chaos.sh
/// starts the clusters on their own ports and exports these).
enum ClusterChaosEnvironment {
    static let environment = TestServers.environment
    static let enabled = environment["RELAY_CLUSTER_CHAOS"] == "1"
    /// The RabbitMQ cluster's node list (`RELAY_AMQP_URL`, from `rabbitmq-cluster.sh --base-port B start`).
    static let amqpURL = TestServers.amqpURL
    /// The Redis Cluster's seed list (`RELAY_REDIS_URL`, from `redis-cluster.sh --base-port B start`).
    static let redisURL = TestServers.redisURL
    static let simURL = TestServers.simURL(default: "http://127.0.0.1:18791")
    /// `CLUSTER_CHAOS_RABBITMQ_BASE_PORT`: the RabbitMQ cluster's base port (AMQP on B+1..B+3).
    static let rabbitBasePort = Int(environment["CLUSTER_CHAOS_RABBITMQ_BASE_PORT"] ?? "") ?? 5780
    /// `CLUSTER_CHAOS_REDIS_BASE_PORT`: the Redis Cluster's base port (nodes on B..B+5).
    static let redisBasePort = Int(environment["CLUSTER_CHAOS_REDIS_BASE_PORT"] ?? "") ?? 7301
    /// `CLUSTER_CHAOS_COMMANDS` (5,000).
    static let commandCount = Int(environment["CLUSTER_CHAOS_COMMANDS"] ?? "") ?? 5000
    /// `CLUSTER_CHAOS_PACE_MS`: the pause between two publishes (10 ms: about 100 commands/s, so every failover
    /// happens while commands keep coming).
    static let pace = Duration.milliseconds(Int(environment["CLUSTER_CHAOS_PACE_MS"] ?? "") ?? 10)
    static let repositoryRoot = TestServers.repositoryRoot
    static let relayBinary = TestServers.relayBinary
    /// `RELAY_VAR_DIR` as in scripts/lib.sh (the clusters' data, pid files and logs).
    static let varDirectory =
        environment["RELAY_VAR_DIR"] ?? repositoryRoot.appendingPathComponent("var").path
    static let logger = Logger(label: "cluster-chaos-test")
}

/// Drives the test's two local clusters through their scripts (`scripts/dev/rabbitmq-cluster.sh`,
/// `scripts/dev/redis-cluster.sh`, both on the base ports of ``ClusterChaosEnvironment``) and `redis-cli`.
enum LocalClusters {
    /// The AMQP port of RabbitMQ node `index` (1-3).
    static func amqpPort(ofNode index: Int) -> Int { ClusterChaosEnvironment.rabbitBasePort + index }

    /// The node index (1-3) of an Erlang node name (`rabbit5781@localhost`, or `rabbit2@localhost` on the
    /// default base port).
    static func nodeIndex(ofNodeName name: String) -> Int? {
        let digits = name.drop { !$0.isNumber }.prefix { $0.isNumber }
        guard let number = Int(digits) else { return nil }
        let index = number > 3 ? number - ClusterChaosEnvironment.rabbitBasePort : number
        return (1...3).contains(index) ? index : nil
    }

    /// Runs `rabbitmq-cluster.sh --base-port B arguments…` and returns its output (stdout and stderr); records an
    /// issue and throws when it fails.
    @discardableResult
    static func rabbitmq(_ arguments: [String]) async throws -> String {
        try await run(
            ClusterChaosEnvironment.repositoryRoot.appendingPathComponent("scripts/dev/rabbitmq-cluster.sh").path,
            ["--base-port", String(ClusterChaosEnvironment.rabbitBasePort)] + arguments)
    }

    /// The index (1-3) of the node leading quorum queue `queue`.
    static func leader(of queue: String) async throws -> Int {
        let output = try await rabbitmq(["leader", queue])
        let name = output.split(whereSeparator: \.isNewline).last { $0.hasPrefix("rabbit") }.map(String.init) ?? ""
        guard let index = nodeIndex(ofNodeName: name) else {
            Issue.record("no leader node in: \(output)")
            throw TimedOut(what: "the leader of \(queue)")
        }
        return index
    }

    /// The Redis Cluster's ports.
    static var redisPorts: [Int] { (0..<6).map { ClusterChaosEnvironment.redisBasePort + $0 } }

    /// `redis-cli -p port arguments…`, its output lines; throws when the node does not answer.
    static func redisCLI(_ port: Int, _ arguments: [String]) async throws -> [String] {
        let output = try await run(
            "/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port)] + arguments, recordingFailure: false)
        return output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// A node's reply as JSON (`redis-cli --json`); nil when the node does not answer.
    static func redisJSON(_ port: Int, _ arguments: [String]) async -> Any? {
        guard let lines = try? await redisCLI(port, ["--json"] + arguments),
            let data = lines.joined().data(using: .utf8)
        else { return nil }
        return try? JSONSerialization.jsonObject(with: data)
    }

    /// The node's role (`master`, `slave`), nil when it does not answer.
    static func role(_ port: Int) async -> String? {
        (await redisJSON(port, ["ROLE"]) as? [Any])?.first as? String
    }

    /// The ports of a primary's replicas (`ROLE` on the primary: `master`, offset, `[[ip, port, offset], …]`).
    static func replicas(of port: Int) async -> [Int] {
        guard let reply = await redisJSON(port, ["ROLE"]) as? [Any], reply.first as? String == "master",
            reply.count >= 3, let replicas = reply[2] as? [[Any]]
        else { return [] }
        return replicas.compactMap { $0.count >= 2 ? Int("\($0[1])") : nil }
    }

    /// The slot map: each range of slots with the port of its primary (`CLUSTER SLOTS` asked of the first node
    /// that answers); nil when none answers.
    static func slotRanges() async -> [(slots: ClosedRange<Int>, primary: Int)]? {
        for port in redisPorts {
            // Per range: start, end, then the primary's [ip, port, id], then its replicas'.
            guard let ranges = await redisJSON(port, ["CLUSTER", "SLOTS"]) as? [[Any]] else { continue }
            return ranges.compactMap { range in
                guard range.count >= 3, let start = range[0] as? Int, let end = range[1] as? Int, start <= end,
                    let primary = range[2] as? [Any], primary.count >= 2, let port = primary[1] as? Int
                else { return nil }
                return (start...end, port)
            }
        }
        return nil
    }

    /// The port of the primary serving `slot`.
    static func primary(ofSlot slot: Int) async throws -> Int? {
        await slotRanges()?.first { $0.slots.contains(slot) }?.primary
    }

    /// The pid of the Redis node on `port` (from the pid file redis-cluster.sh has it write).
    static func redisPID(_ port: Int) throws -> Int32 {
        let path =
            "\(ClusterChaosEnvironment.varDirectory)/redis-cluster-\(ClusterChaosEnvironment.redisBasePort)/\(port)/redis.pid"
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = Int32(text) else { throw TimedOut(what: "the pid of Redis node \(port) (\(path))") }
        return pid
    }

    /// Whether every node that answers sees the cluster `ok` with every slot served.
    static func redisClusterOK(among ports: [Int]) async -> Bool {
        for port in ports {
            guard let lines = try? await redisCLI(port, ["CLUSTER", "INFO"]),
                lines.contains("cluster_state:ok"), lines.contains("cluster_slots_ok:16384")
            else { return false }
        }
        return true
    }

    /// Runs a program to its end (output in a file: the daemons the cluster scripts start must not hold a pipe);
    /// throws when it fails, and records an issue too when `recordingFailure`.
    private static func run(
        _ executable: String, _ arguments: [String], recordingFailure: Bool = true
    ) async throws -> String {
        let child = try ChildProcess.start(
            executable: executable, arguments: arguments, clearRelayEnvironment: false, label: "cluster-chaos")
        let ending = try await child.waitForExit(timeout: .seconds(150))
        let output = child.output
        try? FileManager.default.removeItem(atPath: child.outputPath)
        guard ending.reason == .exit, ending.status == 0 else {
            guard recordingFailure else { throw TimedOut(what: "\(executable) to succeed") }
            Issue.record("\(executable) \(arguments.joined(separator: " ")) failed (\(ending.status)): \(output)")
            throw TimedOut(what: "\(executable) \(arguments.joined(separator: " ")) to succeed")
        }
        return output
    }
}
