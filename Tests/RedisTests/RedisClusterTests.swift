import Foundation
@_spi(Testing) import Redis
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(
    "RedisClient on a real Redis Cluster (3 primaries + 3 replicas)", .serialized, .redisCluster,
    .enabled(if: RedisTestCluster.isAvailable, "redis-server/redis-cli are not installed: no Redis Cluster to test"))
struct RedisClusterTests {
    /// 300 keys spread over the slots: every primary serves some of them.
    static func spreadKeys(_ prefix: String, count: Int = 300) -> [String] {
        (0..<count).map { "\(prefix){\($0)}" }
    }

    @Test func routesEachCommandToThePrimaryOfItsSlot() async throws {
        try await RedisTestCluster.ensureHealthy()
        let client = try RedisTestCluster.makeClient()
        defer { Task { await client.shutdown() } }
        let prefix = RedisTestSupport.prefix()
        let keys = Self.spreadKeys(prefix)
        for (index, key) in keys.enumerated() { try await client.set(key, "v\(index)", expiry: .seconds(120)) }

        let primaries = client.clusterPrimaries
        #expect(primaries.count == 3)
        let perNode = client.clusterCommandsPerNode
        for primary in primaries { #expect(perNode[primary, default: 0] > 0, "\(primary) got no command") }

        // Behind the client's back: each key is on the node that serves its slot, and only there.
        var found = 0
        for port in try await RedisTestCluster.primaryPorts() {
            let node = try RedisTestCluster.node(port)
            for (index, key) in keys.enumerated()
            where try await RedisTestCluster.owner(ofSlot: RedisSlot.of(key)) == port {
                #expect(try await node.get(key) == "v\(index)")
                found += 1
            }
            await node.shutdown()
        }
        #expect(found == keys.count)

        // A pipeline over all the slots is answered in order.
        let replies = try await client.pipeline(keys.map { ["GET", $0] })
        #expect(try replies.map { try $0.get().string } == keys.indices.map { "v\($0)" })

        // SCAN visits every primary behind one numeric cursor.
        var cursor = "0"
        var scanned = Set<String>()
        var pages = 0
        repeat {
            let reply = try await client.send(["SCAN", cursor, "MATCH", prefix + "*", "COUNT", "25"])
            let parts = try #require(reply.array)
            cursor = try #require(parts[0].string)
            #expect(cursor.allSatisfy { $0.isNumber })
            for key in parts[1].array ?? [] { scanned.insert(key.string ?? "") }
            pages += 1
        } while cursor != "0" && pages < 10_000
        #expect(scanned == Set(keys))
        #expect(Set(try await client.scan(match: prefix + "*", count: 50)) == Set(keys))

        // Multi-key commands across slots are refused before being sent; delete() splits by slot.
        let written = client.commandsWrittenCount
        await #expect(throws: RedisError.self) { try await client.send(["MGET", keys[0], keys[1]]) }
        do {
            _ = try await client.send(["DEL", keys[0], keys[1]])
            Issue.record("a cross-slot DEL must be refused")
        } catch let error as RedisError {
            #expect(error.code == .crossSlot)
        }
        #expect(client.commandsWrittenCount == written)
        #expect(try await client.delete(keys) == keys.count)
        #expect(try await client.get(keys[0]) == nil)
    }

    @Test func scriptsRunOnTheirKeysNodeAndAreLoadedPerNode() async throws {
        try await RedisTestCluster.ensureHealthy()
        let primaryPorts = try await RedisTestCluster.primaryPorts()
        for port in primaryPorts {
            let node = try RedisTestCluster.node(port)
            _ = try await node.send(["SCRIPT", "FLUSH"])
            await node.shutdown()
        }
        let client = try RedisTestCluster.makeClient()
        defer { Task { await client.shutdown() } }
        let script = RedisScript(
            "redis.call('SET', KEYS[1], ARGV[1], 'PX', 120000); redis.call('SET', KEYS[2], ARGV[1], 'PX', 120000); "
                + "return redis.call('GET', KEYS[1])")
        let prefix = RedisTestSupport.prefix()
        // Each account's two keys share a slot; the accounts are spread over every primary.
        for account in 0..<60 {
            let keys = ["\(prefix){org_\(account)}:a", "\(prefix){org_\(account)}:b"]
            #expect(try await client.run(script, keys: keys, arguments: ["x\(account)"]).string == "x\(account)")
            #expect(try await client.get(keys[1]) == "x\(account)")
        }
        // Every primary loaded the script on its own first NOSCRIPT.
        for port in primaryPorts {
            let node = try RedisTestCluster.node(port)
            #expect(try await node.send(["SCRIPT", "EXISTS", script.sha1]).array == [.integer(1)], "node \(port)")
            await node.shutdown()
        }
        // Keys of two accounts in one script: refused with a clear error, nothing sent.
        let written = client.commandsWrittenCount
        do {
            _ = try await client.run(script, keys: ["\(prefix){org_1}:a", "\(prefix){org_2}:a"], arguments: ["y"])
            Issue.record("a cross-slot script must be refused")
        } catch let error as RedisError {
            #expect(error.code == .crossSlot)
            #expect(error.message.contains("CROSSSLOT"))
        }
        #expect(client.commandsWrittenCount == written)
    }

    @Test func followsASKDuringAMigrationAndMOVEDAfterIt() async throws {
        try await RedisTestCluster.ensureHealthy()
        let client = try RedisTestCluster.makeClient()
        defer { Task { await client.shutdown() } }
        let tag = "{mig-\(UUID().uuidString)}"
        let slot = RedisSlot.of(tag.dropFirst().dropLast().description)
        let (first, second, third) = ("\(tag):a", "\(tag):b", "\(tag):c")
        try await client.set(first, "1", expiry: .seconds(120))
        try await client.set(second, "2", expiry: .seconds(120))

        let sourcePort = try #require(try await RedisTestCluster.owner(ofSlot: slot))
        let targetPort = try #require(try await RedisTestCluster.primaryPorts().first { $0 != sourcePort })
        let (sourceID, targetID) = (
            try await RedisTestCluster.id(sourcePort), try await RedisTestCluster.id(targetPort)
        )
        let source = try RedisTestCluster.node(sourcePort)
        let target = try RedisTestCluster.node(targetPort)
        defer {
            Task {
                await source.shutdown()
                await target.shutdown()
            }
        }

        // Migration under way: `first` already moved, `second` not yet.
        _ = try await target.send(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID])
        _ = try await source.send(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID])
        _ = try await source.send(["MIGRATE", "127.0.0.1", String(targetPort), "", "0", "5000", "KEYS", first])
        // The source no longer has it: it answers ASK (a plain client does not follow it).
        await #expect(throws: RedisError.self) { try await source.send(["EXISTS", first]) }

        let asked = client.clusterCounters.asked
        #expect(try await client.get(first) == "1")  // source: ASK → ASKING + GET on the target
        #expect(client.clusterCounters.asked == asked + 1)
        #expect(try await client.get(second) == "2")  // still on the source: no redirection
        #expect(client.clusterCounters.asked == asked + 1)
        try await client.set(third, "3", expiry: .seconds(120))  // a new key goes to the target (ASK)
        #expect(client.clusterCounters.asked == asked + 2)
        #expect(try await target.pipeline([["ASKING"], ["GET", third]])[1].get().string == "3")

        // Migration done: the slot belongs to the target; the client's map still names the source.
        _ = try await source.send(["MIGRATE", "127.0.0.1", String(targetPort), "", "0", "5000", "KEYS", second])
        for node in [target, source] {
            _ = try await node.send(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID])
        }
        for port in try await RedisTestCluster.primaryPorts() where port != sourcePort && port != targetPort {
            let other = try RedisTestCluster.node(port)
            _ = try await other.send(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID])
            await other.shutdown()
        }
        let moved = client.clusterCounters.moved
        #expect(try await client.get(second) == "2")  // source: MOVED → target
        #expect(client.clusterCounters.moved == moved + 1)
        #expect(try await client.get(first) == "1")  // the slot now points at the target: no redirection
        #expect(client.clusterCounters.moved == moved + 1)
        try await RedisTestCluster.waitUntil("every node agrees on the slot's new owner") {
            for port in RedisTestCluster.ports
            where try await RedisTestCluster.owner(ofSlot: slot, askedPort: port)
                != targetPort
            {
                return false
            }
            return true
        }
        _ = try await client.delete([first, second, third])
    }

    @Test func survivesAKilledPrimaryWhileCommandsKeepFlowing() async throws {
        try await RedisTestCluster.ensureHealthy()
        let client = try RedisTestCluster.makeClient(retryTimeout: .seconds(30))
        defer { Task { await client.shutdown() } }
        let prefix = RedisTestSupport.prefix()
        let keys = Self.spreadKeys(prefix, count: 120)
        for key in keys { try await client.set(key, "before", expiry: .seconds(300)) }

        let primaries = try await RedisTestCluster.primaryPorts()
        let victim = try #require(primaries.first)
        let victimKeys = try await asyncFilter(keys) {
            try await RedisTestCluster.owner(ofSlot: RedisSlot.of($0)) == victim
        }
        try #require(!victimKeys.isEmpty)
        // Acknowledged writes a primary has not replicated die with it (asynchronous replication): make sure the
        // "before" values reached the victim's replica, so their survival can be checked.
        let direct = try RedisTestCluster.node(victim)
        #expect(try await direct.send(["WAIT", "1", "1500"]).int == 1)
        await direct.shutdown()

        let script = RedisScript("return redis.call('INCR', KEYS[1])")
        let flow = Flow()
        defer { flow.stop.store(true, ordering: .relaxed) }  // also when an expectation below throws
        let workers = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var round = 0
                        while !flow.stop.load(ordering: .relaxed) {
                            let key = keys[(worker * 15 + round) % keys.count] + ":w\(worker)"
                            do {
                                try await client.set(key, "\(round)", expiry: .seconds(120))
                                let read = try await client.get(key)
                                if read != "\(round)" {
                                    flow.failures.withLock { $0.append("\(key): read \(read ?? "nil")") }
                                }
                                _ = try await client.run(script, keys: [key + ":n"], arguments: [])
                                flow.successes.add(1, ordering: .relaxed)
                            } catch {
                                flow.failures.withLock { $0.append("\(key): \(error)") }
                            }
                            round += 1
                        }
                    }
                }
            }
        }
        try await RedisTestCluster.waitUntil("commands flow") { flow.successes.load(ordering: .relaxed) > 100 }

        let killedAt = ContinuousClock.now
        #expect(kill(try RedisTestCluster.pid(ofNodeOn: victim), SIGKILL) == 0)
        // The first command for the dead primary's slots returns once its replica has been promoted.
        #expect(try await client.get(victimKeys[0]) == "before")
        let failover = ContinuousClock.now - killedAt
        print("redis cluster failover: primary \(victim) SIGKILLed, first command served after \(failover)")

        let promoted = try await RedisTestCluster.owner(ofSlot: RedisSlot.of(victimKeys[0]), askedPort: primaries[1])
        #expect(promoted != victim)
        #expect(client.clusterPrimaries.contains { $0.port == promoted })
        let afterFailover = flow.successes.load(ordering: .relaxed)
        try await RedisTestCluster.waitUntil("commands keep flowing after the failover") {
            flow.successes.load(ordering: .relaxed) > afterFailover + 300
        }
        flow.stop.store(true, ordering: .relaxed)
        await workers.value

        #expect(flow.failures.withLock { $0 } == [])
        for key in victimKeys { #expect(try await client.get(key) == "before", "\(key)") }
        #expect(failover < .seconds(30))

        // The killed node comes back as a replica.
        try await RedisTestCluster.ensureHealthy()
        #expect(try await RedisTestCluster.primaryPorts().count == 3)
        _ = try await client.delete(keys)
    }

    /// A primary lost with no replica to take over (a shard outage): a command for its slots waits out the retry
    /// timeout once (a failover would have ended by then), then the node counts as down and each command for it
    /// fails after one attempt with `clusterUnavailable`, while the other slots are served; once the node is back
    /// its slots are served again.
    @Test func failsFastForAPrimaryDownLongerThanTheRetryTimeoutWhileOtherSlotsAreServed() async throws {
        try await RedisTestCluster.ensureHealthy()
        let client = try RedisTestCluster.makeClient(retryTimeout: .seconds(2))
        defer { Task { await client.shutdown() } }
        let keys = Self.spreadKeys(RedisTestSupport.prefix(), count: 60)
        for key in keys { try await client.set(key, "before", expiry: .seconds(120)) }
        let victim = try #require(try await RedisTestCluster.primaryPorts().first)
        var onVictim: [String] = []
        var elsewhere: [String] = []
        for key in keys {
            if try await RedisTestCluster.owner(ofSlot: RedisSlot.of(key)) == victim {
                onVictim.append(key)
            } else {
                elsewhere.append(key)
            }
        }
        try #require(onVictim.count >= 2 && !elsewhere.isEmpty)
        let direct = try RedisTestCluster.node(victim)
        let replicas = (try await direct.send(["ROLE"]).array?[2].array ?? []).compactMap {
            $0.array?[1].string.flatMap(Int.init)
        }
        await direct.shutdown()
        try #require(!replicas.isEmpty)
        func configure(_ ports: [Int], _ name: String, _ value: String) async {
            for port in ports {
                guard let node = try? RedisTestCluster.node(port) else { continue }
                _ = try? await node.send(["CONFIG", "SET", name, value])
                await node.shutdown()
            }
        }
        // The other slots stay served without full coverage; the victim's replicas do not take over.
        await configure(RedisTestCluster.ports, "cluster-require-full-coverage", "no")
        await configure(replicas, "cluster-replica-no-failover", "yes")
        #expect(kill(try RedisTestCluster.pid(ofNodeOn: victim), SIGKILL) == 0)

        func failure(of key: String) async -> (RedisError?, Duration) {
            let started = ContinuousClock.now
            do {
                _ = try await client.get(key)
                return (nil, ContinuousClock.now - started)
            } catch {
                return (error as? RedisError, ContinuousClock.now - started)
            }
        }
        // The first command waits out the retry timeout (a failover would be over by then).
        let (first, waited) = await failure(of: onVictim[0])
        #expect(first?.code == .clusterUnavailable, "\(String(describing: first))")
        #expect(waited >= .milliseconds(1900))
        // Now the node is down for good: one attempt, then clusterUnavailable.
        let (second, took) = await failure(of: onVictim[1])
        #expect(second?.code == .clusterUnavailable, "\(String(describing: second))")
        #expect(took < .milliseconds(500), "a command for a node down for good took \(took)")
        for key in elsewhere.prefix(10) { #expect(try await client.get(key) == "before", "\(key)") }

        // Back (empty: the test cluster keeps no data on disk) and serving its slots again.
        try await RedisTestCluster.ensureHealthy()
        await configure(replicas, "cluster-replica-no-failover", "no")
        await configure(RedisTestCluster.ports, "cluster-require-full-coverage", "yes")
        try await client.set(onVictim[0], "after", expiry: .seconds(120))
        #expect(try await client.get(onVictim[0]) == "after")
        _ = try await client.delete(keys)
    }

    /// What the workers of the failover test share.
    final class Flow: Sendable {
        let failures = Mutex<[String]>([])
        let successes = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
    }

    private func asyncFilter(_ values: [String], _ keep: (String) async throws -> Bool) async throws -> [String] {
        var kept: [String] = []
        for value in values where try await keep(value) { kept.append(value) }
        return kept
    }
}
