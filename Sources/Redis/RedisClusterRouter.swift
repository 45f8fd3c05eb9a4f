import Logging
import Synchronization

/// Runs commands on a Redis Cluster: routes each by its key's hash slot to the primary serving it, follows
/// `MOVED` and `ASK`, and survives failovers by refreshing the slot map and retrying for a bounded time.
///
/// - Slot map: `CLUSTER SLOTS`, read from any known node (primaries, replicas, then the seeds) on first use,
///   after a `MOVED` (in the background; the slot is re-pointed at once), and before retrying after a
///   connection failure, `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN` or `LOADING`. One refresh runs at a time.
/// - Connections: one ``RedisConnectionPool`` per node (lazy: one auto-pipelining connection until its load
///   overflows), so commands for one node share batches exactly as on a single server.
/// - Pipelines: the commands are grouped by node, each group sent as one request (in the caller's order), the
///   groups concurrently. `ASK` sends `ASKING` and the command together, so they stay adjacent on one connection.
/// - Retries: redirections are followed at once (at most ``maxRedirections`` per command); failures that a
///   failover explains are retried with backoff until ``RedisConfiguration/clusterRetryTimeout``. A command whose
///   connection failed may have run already: it runs again (at least once), like any retry in this codebase.
/// - A node that stays unreachable longer than that (a primary lost with no replica to promote: a shard outage)
///   is no failover: a command for it then fails after one attempt instead of waiting the whole timeout again,
///   so the callers of the other shards' slots are not held up behind it (one failing connect per command, and
///   a slot map read at most every ``downNodeRefreshInterval``, so the map still learns when its slots move).
/// - `SCAN` visits every primary in turn behind one numeric cursor (see ``scan(_:)``).
final class RedisClusterRouter: Sendable {
    /// Redirections (`MOVED`, `ASK`) followed for one command before giving up.
    static let maxRedirections = 16
    /// Backoff before the first retry after a failure; doubled up to ``maxBackoff``.
    static let firstBackoff: Duration = .milliseconds(20)
    static let maxBackoff: Duration = .milliseconds(500)
    /// Slot map reads caused by commands for a node that is down for good: at most one per this interval.
    static let downNodeRefreshInterval: Duration = .seconds(1)

    private struct State {
        var topology: RedisClusterTopology?
        var pools: [RedisEndpoint: RedisConnectionPool] = [:]
        var refresh: Task<Void, Never>?
        var lastRefresh: ContinuousClock.Instant?
        /// Nodes whose connection failed, since when (cleared by the node's next answer).
        var unreachable: [RedisEndpoint: ContinuousClock.Instant] = [:]
        var refreshes = 0
        var moved = 0
        var asked = 0
        var isShutdown = false
    }

    /// One command on its way: where it goes next and how it got there.
    private struct Pending {
        let index: Int
        let command: [[UInt8]]
        /// The slot it is routed by; `nil` for any node.
        let slot: Int?
        /// A node named by `MOVED`/`ASK`, used instead of the slot map for the next attempt.
        var redirect: RedisEndpoint?
        var asking = false
        var redirections = 0
        /// The node whose connection failed on the last attempt.
        var failedOn: RedisEndpoint?
    }

    private enum Outcome {
        case done(Result<RedisValue, RedisError>)
        case redirected(RedisEndpoint, asking: Bool)
        /// A failover (or resharding) in progress: refresh the slot map, back off and try again.
        case retry(RedisError)
    }

    private let state = Mutex(State())
    private let configuration: RedisConfiguration
    private let logger: Logger

    init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: - Commands

    /// Runs the commands (routed by their keys) and returns one result per command, in order.
    func execute(_ commands: [[[UInt8]]]) async throws -> [Result<RedisValue, RedisError>] {
        var results = [Result<RedisValue, RedisError>?](repeating: nil, count: commands.count)
        var pending: [Pending] = []
        for (index, command) in commands.enumerated() {
            switch RedisCommandRouting.of(command) {
            case .anyNode: pending.append(Pending(index: index, command: command, slot: nil))
            case .slot(let slot): pending.append(Pending(index: index, command: command, slot: slot))
            case .refused(let error): results[index] = .failure(error)
            case .scan: results[index] = try await scan(command)
            }
        }
        for (index, result) in try await run(pending) { results[index] = result }
        return results.map { $0! }
    }

    /// Runs one command on the node serving `slot` (e.g. `SCRIPT LOAD` where a script's keys live).
    func execute(_ command: [[UInt8]], slot: Int) async throws -> Result<RedisValue, RedisError> {
        try await run([Pending(index: 0, command: command, slot: slot)])[0].1
    }

    /// `SCAN cursor [MATCH ...] [COUNT ...] [TYPE ...]` over every primary, as if the cluster were one server.
    ///
    /// The primaries are visited in the order of the lowest slot each serves; the cursor the caller sees is a
    /// decimal number encoding the node's own cursor and that lowest slot (`nodeCursor * 16385 + slot + 1`), and
    /// `0` once the last primary is done. After a failover the walk continues on the promoted replica (same
    /// slots); a resharding during the walk may skip or repeat keys, as `SCAN` itself may.
    func scan(_ command: [[UInt8]]) async throws -> Result<RedisValue, RedisError> {
        let radix = UInt128(RedisSlot.count + 1)
        guard command.count >= 2, let cursor = UInt128(String(decoding: command[1], as: UTF8.self)) else {
            return .failure(.server("ERR invalid cursor"))
        }
        var topology = try await currentTopology()
        let firstSlot: Int
        let nodeCursor: UInt128
        if cursor == 0 {
            guard let first = topology.scanOrder.first else {
                return .failure(unavailable("no slot is served by any node"))
            }
            firstSlot = first.firstSlot
            nodeCursor = 0
        } else {
            firstSlot = Int(cursor % radix) - 1
            nodeCursor = cursor / radix
            guard firstSlot >= 0 else { return .failure(.server("ERR invalid cursor")) }
        }
        var nodeCommand = command
        nodeCommand[1] = Array(String(nodeCursor).utf8)
        let result = try await run([Pending(index: 0, command: nodeCommand, slot: firstSlot)])[0].1
        guard case .success(let reply) = result else { return result }
        guard let parts = reply.array, parts.count == 2, let nextText = parts[0].string,
            let next = UInt128(nextText)
        else { return .failure(.unexpectedReply(reply, expected: "a SCAN reply")) }
        let composite: UInt128
        if next != 0 {
            composite = next * radix + UInt128(firstSlot + 1)
        } else {
            topology = try await currentTopology()
            if let following = topology.scanOrder.first(where: { $0.firstSlot > firstSlot }) {
                composite = UInt128(following.firstSlot + 1)
            } else {
                composite = 0
            }
        }
        return .success(.array([.bulkString(Array(String(composite).utf8)), parts[1]]))
    }

    /// Runs the commands until each has a final result, following redirections and retrying through failovers.
    private func run(_ commands: [Pending]) async throws -> [(Int, Result<RedisValue, RedisError>)] {
        var results: [(Int, Result<RedisValue, RedisError>)] = []
        var pending = commands
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.clusterRetryTimeout
        var backoff = Self.firstBackoff
        while !pending.isEmpty {
            let topology = try await currentTopology()
            var groups: [RedisEndpoint: [Pending]] = [:]
            var order: [RedisEndpoint] = []
            var retry: [Pending] = []
            var lastError = unavailable("no node serves the slot")
            for command in pending {
                guard let target = command.redirect ?? target(of: command, in: topology) else {
                    retry.append(command)
                    continue
                }
                if groups[target] == nil { order.append(target) }
                groups[target, default: []].append(command)
            }
            let outcomes: [(Pending, Outcome)]
            if order.count == 1 {
                outcomes = try await send(groups[order[0]]!, to: order[0])
            } else {
                outcomes = try await withThrowingTaskGroup(of: [(Pending, Outcome)].self) { group in
                    for target in order {
                        let commands = groups[target]!
                        group.addTask { try await self.send(commands, to: target) }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
            }
            for (command, outcome) in outcomes {
                var command = command
                switch outcome {
                case .done(let result):
                    results.append((command.index, result))
                case .redirected(let target, let asking):
                    command.redirections += 1
                    guard command.redirections <= Self.maxRedirections else {
                        results.append((command.index, .failure(unavailable("too many MOVED/ASK redirections"))))
                        continue
                    }
                    command.redirect = target
                    command.asking = asking
                    retry.append(command)
                case .retry(let error):
                    command.redirect = nil
                    command.asking = false
                    lastError = error
                    retry.append(command)
                }
            }
            pending = retry.sorted { $0.index < $1.index }
            // Commands for a node down longer than a failover takes end now (see the type's documentation).
            let downForGood = nodesDownForGood()
            if !downForGood.isEmpty {
                var failedFast = false
                pending.removeAll { command in
                    guard command.redirect == nil, let node = command.failedOn, downForGood.contains(node) else {
                        return false
                    }
                    let error = unavailable(
                        "node \(node) unreachable for longer than the retry timeout (\(lastError.message))")
                    results.append((command.index, .failure(error)))
                    failedFast = true
                    return true
                }
                if failedFast { refreshIfStale() }
                if pending.isEmpty { continue }
            }
            // Redirected commands go again at once; the others wait for a new slot map.
            guard pending.contains(where: { $0.redirect == nil }) else { continue }
            if clock.now >= deadline {
                logger.warning(
                    "Redis Cluster did not serve commands within the retry timeout",
                    metadata: ["redis.error": "\(lastError)", "redis.commands": "\(pending.count)"])
                let gaveUp =
                    lastError.code == .clusterUnavailable
                    ? lastError
                    : RedisError(
                        code: .clusterUnavailable,
                        message: "Redis Cluster: slot not served within the retry timeout (\(lastError.message))",
                        underlying: lastError, isRetriable: true)
                for command in pending where command.redirect == nil {
                    results.append((command.index, .failure(gaveUp)))
                }
                pending.removeAll { $0.redirect == nil }
                continue
            }
            try await Task.sleep(for: min(backoff, deadline - clock.now))
            backoff = min(backoff * 2, Self.maxBackoff)
            await refreshTopology()
        }
        return results
    }

    private func target(of command: Pending, in topology: RedisClusterTopology) -> RedisEndpoint? {
        if let slot = command.slot { return topology.primary(forSlot: slot) }
        let primaries = topology.primaries
        return primaries.isEmpty ? nil : primaries[Int.random(in: 0..<primaries.count)]
    }

    /// Sends one node's commands as one request and classifies each reply.
    private func send(_ commands: [Pending], to target: RedisEndpoint) async throws -> [(Pending, Outcome)] {
        guard let pool = pool(for: target) else { throw RedisError.shutdown }
        var request: [[[UInt8]]] = []
        for command in commands {
            if command.asking { request.append([Array("ASKING".utf8)]) }
            request.append(command.command)
        }
        let replies: [Result<RedisValue, RedisError>]
        do {
            replies = try await pool.execute(request)
        } catch let error as RedisError where error.isRetriable || error.code == .shutdown {
            if error.code == .shutdown && isShutdown { throw error }
            // The node is gone (or its pool was closed by a topology change): a failover may be under way.
            logger.debug(
                "Redis Cluster node failed; will retry on a new slot map",
                metadata: ["redis.node": "\(target)", "redis.error": "\(error)"])
            if error.code != .shutdown {
                let now = ContinuousClock.now
                state.withLock { state in
                    if state.unreachable[target] == nil { state.unreachable[target] = now }
                }
            }
            return commands.map { command in
                var command = command
                command.failedOn = target
                return (command, .retry(error))
            }
        }
        state.withLock { state in
            if !state.unreachable.isEmpty { state.unreachable[target] = nil }
        }
        var outcomes: [(Pending, Outcome)] = []
        var position = 0
        for command in commands {
            if command.asking { position += 1 }
            outcomes.append((command, classify(replies[position], from: target)))
            position += 1
        }
        return outcomes
    }

    private func classify(_ reply: Result<RedisValue, RedisError>, from node: RedisEndpoint) -> Outcome {
        guard case .failure(let error) = reply, error.code == .server, let prefix = error.serverErrorPrefix else {
            return .done(reply)
        }
        switch prefix {
        case "MOVED", "ASK":
            // MOVED <slot> <host>:<port>; an empty host means the node that answered.
            let words = error.message.split(separator: " ")
            guard words.count >= 3, let slot = Int(words[1]), (0..<RedisSlot.count).contains(slot),
                let named = RedisEndpoint(redirection: words[2].hasPrefix(":") ? "\(node.host)\(words[2])" : words[2])
            else { return .done(reply) }
            if prefix == "MOVED" {
                state.withLock { state in
                    state.moved += 1
                    state.topology?.assign(slot: slot, to: named)
                }
                // The rest of the map probably moved too (a failover moves a whole node's slots).
                refreshInBackground()
                return .redirected(named, asking: false)
            }
            state.withLock { $0.asked += 1 }
            return .redirected(named, asking: true)
        case "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "LOADING", "READONLY":
            return .retry(
                RedisError(
                    code: .clusterUnavailable, message: "Redis Cluster: \(error.message)", underlying: error,
                    isRetriable: true))
        default:
            return .done(reply)
        }
    }

    // MARK: - Slot map

    /// The current slot map, read first if there is none yet.
    private func currentTopology() async throws -> RedisClusterTopology {
        if let topology = state.withLock({ $0.topology }) { return topology }
        await refreshTopology()
        if let topology = state.withLock({ $0.topology }) { return topology }
        if isShutdown { throw RedisError.shutdown }
        throw RedisError(
            code: .connectionFailed,
            message: "cannot read the Redis Cluster slot map from any of "
                + configuration.clusterNodes.map(\.description).joined(separator: ", "),
            isRetriable: true)
    }

    /// The nodes unreachable for longer than ``RedisConfiguration/clusterRetryTimeout``.
    private func nodesDownForGood() -> Set<RedisEndpoint> {
        let now = ContinuousClock.now
        let limit = configuration.clusterRetryTimeout
        return state.withLock { state in
            guard !state.unreachable.isEmpty else { return [] }
            return Set(state.unreachable.filter { now - $0.value >= limit }.keys)
        }
    }

    /// Reads the slot map in the background unless it was read within ``downNodeRefreshInterval``.
    private func refreshIfStale() {
        let now = ContinuousClock.now
        let stale = state.withLock { state in
            state.refresh == nil && (state.lastRefresh.map { now - $0 >= Self.downNodeRefreshInterval } ?? true)
        }
        if stale { refreshInBackground() }
    }

    private func refreshInBackground() {
        Task { await self.refreshTopology() }
    }

    /// Reads the slot map again (joining a refresh already under way).
    func refreshTopology() async {
        let task: Task<Void, Never>? = state.withLock { state in
            if state.isShutdown { return nil }
            if let running = state.refresh { return running }
            let task = Task { await self.readTopology() }
            state.refresh = task
            return task
        }
        await task?.value
    }

    private func readTopology() async {
        let (known, old) = state.withLock { state in
            let topology = state.topology
            return ((topology?.primaries ?? []) + (topology?.replicas ?? []), topology)
        }
        var candidates: [RedisEndpoint] = []
        for node in known + configuration.clusterNodes where !candidates.contains(node) { candidates.append(node) }
        var read: RedisClusterTopology?
        for node in candidates {
            guard let pool = pool(for: node) else { break }
            do {
                let reply = try await pool.execute([[Array("CLUSTER".utf8), Array("SLOTS".utf8)]])[0].get()
                let topology = try RedisClusterTopology(clusterSlots: reply, queried: node)
                if topology.assignedSlots > 0 {
                    read = topology
                    break
                }
            } catch {
                logger.debug(
                    "Redis Cluster node did not give its slot map",
                    metadata: ["redis.node": "\(node)", "redis.error": "\(error)"])
            }
        }
        let retired: [RedisConnectionPool] = state.withLock { state in
            state.refresh = nil
            state.lastRefresh = ContinuousClock.now
            guard let read else { return [] }
            state.refreshes += 1
            state.topology = read
            // Close the pools of nodes the cluster no longer lists (removed, or failed and forgotten).
            let keep = Set(read.primaries + read.replicas + configuration.clusterNodes)
            let gone = state.pools.keys.filter { !keep.contains($0) }
            // A node no longer serving slots (failed over, removed) starts afresh if it serves some again.
            state.unreachable = state.unreachable.filter { read.primaries.contains($0.key) }
            return gone.compactMap { state.pools.removeValue(forKey: $0) }
        }
        for pool in retired { await pool.shutdown() }
        guard let read else {
            logger.warning("Redis Cluster slot map unavailable from every known node; will try again")
            return
        }
        if old?.primaries.sorted(by: { $0.description < $1.description })
            != read.primaries.sorted(by: { $0.description < $1.description })
        {
            logger.info(
                "Redis Cluster slot map read",
                metadata: [
                    "redis.primaries": "\(read.primaries.map(\.description).joined(separator: ","))",
                    "redis.slots": "\(read.assignedSlots)",
                ])
        }
    }

    // MARK: - Pools

    private func pool(for node: RedisEndpoint) -> RedisConnectionPool? {
        state.withLock { state in
            if state.isShutdown { return nil }
            if let pool = state.pools[node] { return pool }
            var nodeConfiguration = configuration
            nodeConfiguration.host = node.host
            nodeConfiguration.port = node.port
            nodeConfiguration.database = 0
            nodeConfiguration.clusterNodes = []
            var nodeLogger = logger
            nodeLogger[metadataKey: "redis.node"] = "\(node)"
            let pool = RedisConnectionPool(configuration: nodeConfiguration, logger: nodeLogger)
            state.pools[node] = pool
            return pool
        }
    }

    private var isShutdown: Bool { state.withLock { $0.isShutdown } }

    private func unavailable(_ reason: String) -> RedisError {
        RedisError(code: .clusterUnavailable, message: "Redis Cluster: \(reason)", isRetriable: true)
    }

    /// Closes every node's connections.
    func shutdown() async {
        let (pools, refresh) = state.withLock { state in
            state.isShutdown = true
            defer { state.pools = [:] }
            return (Array(state.pools.values), state.refresh)
        }
        refresh?.cancel()
        for pool in pools { await pool.shutdown() }
    }

    // MARK: - Diagnostics

    /// Batches and commands written, summed over every node.
    var statistics: (writeBatches: Int, commands: Int) {
        let pools = state.withLock { Array($0.pools.values) }
        return pools.reduce(into: (0, 0)) { total, pool in
            let statistics = pool.statistics
            total.0 += statistics.writeBatches
            total.1 += statistics.commands
        }
    }

    /// Commands written per node.
    var commandsPerNode: [RedisEndpoint: Int] {
        state.withLock { $0.pools }.mapValues { $0.statistics.commands }
    }

    /// The primaries of the current slot map.
    var primaries: [RedisEndpoint] { state.withLock { $0.topology?.primaries ?? [] } }

    /// Slot map reads, `MOVED` and `ASK` redirections seen so far.
    var counters: (refreshes: Int, moved: Int, asked: Int) {
        state.withLock { ($0.refreshes, $0.moved, $0.asked) }
    }
}
