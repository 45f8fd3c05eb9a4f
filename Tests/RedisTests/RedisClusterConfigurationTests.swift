import Testing

@testable import Redis

@Suite("Redis Cluster: slots, URLs and routing (no server)")
struct RedisClusterConfigurationTests {
    @Test func slotsMatchRedisCLIClusterKeyslot() {
        // Each expected value is what `redis-cli cluster keyslot KEY` answered on Redis 7.0.15.
        let vectors: [(String, Int)] = [
            ("kr:{org_1}:conn", 13616), ("123456789", 12739), ("foo", 12182), ("{user1000}.following", 3443),
            ("user1000", 3443), ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("{bar", 4015),
            ("foo{bar}{zap}", 5061), ("bar", 5061), ("", 0), ("{}", 15257), ("héllo", 11061),
        ]
        for (key, slot) in vectors {
            #expect(RedisSlot.of(key) == slot, "\(key)")
            #expect(RedisSlot.of(bytes: Array(key.utf8)) == slot, "\(key)")
        }
        // An account's keys share its slot.
        #expect(RedisSlot.of("kr:{org_1}:lock") == 13616)
        #expect(RedisSlot.of("kr:{org_1}:idem:abc") == 13616)
    }

    @Test func parsesClusterURLs() throws {
        let cluster = try RedisConfiguration(url: "redis-cluster://127.0.0.1:7001,127.0.0.1:7002,[::1]:7003,cache")
        #expect(cluster.isCluster)
        #expect(
            cluster.clusterNodes == [
                RedisEndpoint(host: "127.0.0.1", port: 7001), RedisEndpoint(host: "127.0.0.1", port: 7002),
                RedisEndpoint(host: "::1", port: 7003), RedisEndpoint(host: "cache", port: 6379),
            ])
        #expect(cluster.host == "127.0.0.1" && cluster.port == 7001 && cluster.database == 0)
        #expect(cluster.clusterRetryTimeout == .seconds(30))

        let secret = try RedisConfiguration(url: "REDIS-CLUSTER://relay:s%40cret@a:1,b:2/0")
        #expect(secret.username == "relay" && secret.password == "s@cret")
        #expect(secret.clusterNodes.map(\.description) == ["a:1", "b:2"])
        #expect(!secret.description.contains("s@cret") && !secret.description.contains("s%40cret"))
        #expect(secret.description.contains("redis-cluster://relay:***@a:1,b:2"))

        // A single-server URL stays a single server.
        let single = try RedisConfiguration(url: "redis://127.0.0.1:6379/2")
        #expect(!single.isCluster && single.clusterNodes.isEmpty && single.database == 2)

        for bad in [
            "redis-cluster://", "redis-cluster://a:1,,b:2", "redis-cluster://a:1/3", "redis-cluster://a:x",
            "redis-cluster://a:1,[::1", "rediss-cluster://a:1", "redis-clusters://a:1",
        ] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
        do {
            _ = try RedisConfiguration(url: "rediss-cluster://u:topsecret@a:1")
            Issue.record("TLS must be refused")
        } catch {
            #expect(error.code == .invalidURL)
            #expect(error.message.contains("TLS"))
            #expect(!error.description.contains("topsecret"))
        }
    }

    @Test func commandsAreRoutedByTheirKeys() {
        func routing(_ words: [String]) -> RedisCommandRouting { .of(words.map { Array($0.utf8) }) }
        func slot(_ words: [String]) -> Int? {
            if case .slot(let slot) = routing(words) { return slot }
            return nil
        }
        func refused(_ words: [String]) -> RedisError.Code? {
            if case .refused(let error) = routing(words) { return error.code }
            return nil
        }
        #expect(slot(["GET", "kr:{org_1}:conn"]) == 13616)
        #expect(slot(["hset", "kr:{org_1}:conn", "f", "v"]) == 13616)
        // Scripts by KEYS[1]; every key must share its slot; arguments are not keys.
        #expect(slot(["EVALSHA", "abc", "2", "kr:{org_1}:conn", "kr:{org_1}:lock", "123456789"]) == 13616)
        #expect(refused(["EVALSHA", "abc", "2", "kr:{org_1}:conn", "kr:{org_2}:conn"]) == .crossSlot)
        #expect(refused(["DEL", "foo", "bar"]) == .crossSlot)
        #expect(slot(["DEL", "{bar}1", "{bar}2"]) == 5061)
        #expect(refused(["MSET", "foo", "1", "bar", "2"]) == .crossSlot)
        #expect(slot(["MSET", "{x}a", "foo", "{x}b", "bar"]) == RedisSlot.of("x"))
        #expect(refused(["RENAME", "foo", "bar"]) == .crossSlot)
        #expect(slot(["BLPOP", "{q}1", "{q}2", "0"]) == RedisSlot.of("q"))
        #expect(refused(["MULTI"]) == .unsupportedCommand)
        if case .anyNode = routing(["PING"]) {} else { Issue.record("PING goes to any node") }
        if case .anyNode = routing(["EVALSHA", "abc", "0", "arg"]) {} else { Issue.record("no keys: any node") }
        if case .scan = routing(["scan", "0", "MATCH", "kr:{*}:conn"]) {} else { Issue.record("SCAN walks nodes") }
    }

    @Test func readsTheSlotMap() throws {
        func node(_ host: String, _ port: Int64) -> RedisValue {
            .array([.bulkString(Array(host.utf8)), .integer(port), .bulkString(Array("id".utf8))])
        }
        let reply = RedisValue.array([
            .array([.integer(0), .integer(5460), node("10.0.0.1", 7001), node("10.0.0.4", 7004)]),
            .array([.integer(5461), .integer(10922), node("", 7002), node("10.0.0.5", 7005)]),
            .array([.integer(10923), .integer(16383), node("10.0.0.3", 7003)]),
        ])
        var topology = try RedisClusterTopology(
            clusterSlots: reply, queried: RedisEndpoint(host: "10.0.0.2", port: 7002))
        #expect(topology.assignedSlots == 16384)
        #expect(topology.primary(forSlot: 0) == RedisEndpoint(host: "10.0.0.1", port: 7001))
        #expect(topology.primary(forSlot: 5461) == RedisEndpoint(host: "10.0.0.2", port: 7002))
        #expect(topology.primary(forSlot: 16383) == RedisEndpoint(host: "10.0.0.3", port: 7003))
        #expect(topology.replicas.count == 2)
        #expect(topology.scanOrder.map(\.firstSlot) == [0, 5461, 10923])
        topology.assign(slot: 0, to: RedisEndpoint(host: "10.0.0.4", port: 7004))
        #expect(topology.primary(forSlot: 0) == RedisEndpoint(host: "10.0.0.4", port: 7004))
        #expect(topology.scanOrder.map(\.firstSlot) == [0, 1, 5461, 10923])
        #expect(throws: RedisError.self) {
            try RedisClusterTopology(clusterSlots: .integer(1), queried: RedisEndpoint(host: "h", port: 1))
        }
    }
}
