import Foundation
import Logging
import Redis
import Testing

@Suite("RedisClient against a private redis-server")
struct RedisPrivateServerTests {
    @Test func scriptsRunWithEVALSHAAndSurviveScriptFlush() async throws {
        let server = try PrivateRedisServer()
        defer { server.kill() }
        let client = RedisClient(
            configuration: try RedisConfiguration(url: server.url), logger: RedisTestSupport.logger)
        defer { Task { await client.shutdown() } }

        let script = RedisScript("redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], ARGV[2], #KEYS, #ARGV}")
        #expect(try await client.send(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(0)]))
        let first = try await client.run(script, keys: ["k1"], arguments: ["v1", "extra"])
        #expect(
            first
                == .array([.bulkString(Array("k1".utf8)), .bulkString(Array("extra".utf8)), .integer(1), .integer(2)]))
        #expect(try await client.get("k1") == "v1")
        // Our local SHA-1 is the name Redis knows the script by.
        #expect(try await client.send(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(1)]))

        _ = try await client.send(["SCRIPT", "FLUSH"])
        let second = try await client.run(script, keys: ["k2"], arguments: ["v2", "again"])
        #expect(second.array?.count == 4)
        #expect(try await client.get("k2") == "v2")
        for _ in 0..<5 { _ = try await client.run(script, keys: ["k3"], arguments: ["v3", "x"]) }

        // Everything ran through EVALSHA: 2 × (NOSCRIPT + retry) + 5 direct hits, 2 loads (one per empty cache),
        // never EVAL.
        let info = try await client.send(["INFO", "commandstats"]).string ?? ""
        #expect(info.contains("cmdstat_evalsha:calls=9,"))
        #expect(info.contains("cmdstat_script|load:calls=2,"))
        #expect(!info.contains("cmdstat_eval:"))
    }

    @Test func outageFailsFastAndRecoversWithTheSameClient() async throws {
        let server = try PrivateRedisServer()
        defer { server.kill() }
        var configuration = try RedisConfiguration(url: server.url)
        configuration.poolSize = 2
        configuration.connectTimeout = .seconds(1)
        configuration.commandTimeout = .seconds(1)
        let client = RedisClient(configuration: configuration, logger: RedisTestSupport.logger)
        defer { Task { await client.shutdown() } }

        // Warm the pool: calls overflow to a second connection only when the first has many requests in flight.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 { group.addTask { try await client.ping() } }
            try await group.waitForAll()
        }
        try await client.set("k", "before")

        server.kill()
        let clock = ContinuousClock()
        for _ in 0..<5 {
            let start = clock.now
            do {
                try await client.ping()
                Issue.record("ping must fail while the server is down")
            } catch let error as RedisError {
                #expect(error.isRetriable, "\(error)")
                #expect(error.code == .connectionFailed || error.code == .connectionLost, "\(error)")
            }
            #expect(clock.now - start < .seconds(2))
        }

        try server.start()  // same port
        // The same client works again: idle connections whose socket was closed reconnect before use.
        try await client.ping()
        async let c: Void = client.ping()
        async let d: Void = client.ping()
        _ = try await (c, d)
        try await client.set("k", "after")
        #expect(try await client.get("k") == "after")
    }

    @Test func blackholedServerFailsWithinTheConnectTimeout() async throws {
        let listener = SaturatedListener()
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(listener.port)")
        configuration.connectTimeout = .milliseconds(300)
        let client = RedisClient(configuration: configuration, logger: RedisTestSupport.logger)
        defer { Task { await client.shutdown() } }
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await client.ping()
            Issue.record("the handshake cannot complete")
        } catch let error as RedisError {
            #expect(error.code == .connectionFailed, "\(error)")
            #expect(error.isRetriable)
        }
        // 300 ms connect timeout: the call must fail rather than hang; the bound is generous because a loaded
        // 2-core machine stretches it (6 s was seen with four compilers running).
        #expect(clock.now - start < .seconds(15))
        withExtendedLifetime(listener) {}
    }

    @Test func unreachableServerFailsFastWithARetriableError() async throws {
        let port = RedisTestSupport.freePort()
        let client = RedisClient(
            configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(port)"), logger: RedisTestSupport.logger)
        defer { Task { await client.shutdown() } }
        do {
            try await client.ping()
            Issue.record("nothing listens there")
        } catch let error as RedisError {
            #expect(error.code == .connectionFailed)
            #expect(error.isRetriable)
        }
    }
}
