import Foundation
@_spi(Testing) import Redis
import Testing

@Suite("RedisClient against the shared Redis")
struct RedisClientTests {
    @Test func conveniencesRoundTrip() async throws {
        let client = try RedisTestSupport.makeClient()
        defer { Task { await client.shutdown() } }
        try await client.ping()
        let p = RedisTestSupport.prefix()

        #expect(try await client.get(p + "missing") == nil)
        #expect(try await client.set(p + "a", "héllo"))
        #expect(try await client.get(p + "a") == "héllo")
        #expect(try await client.set(p + "a", "other", onlyIfAbsent: true) == false)
        #expect(try await client.get(p + "a") == "héllo")
        #expect(try await client.set(p + "b", "1", expiry: .seconds(60), onlyIfAbsent: true))
        let ttl = try await client.send(["PTTL", p + "b"]).int ?? -1
        #expect(ttl > 0 && ttl <= 60_000)

        #expect(try await client.exists(p + "a"))
        #expect(try await client.exists(p + "missing") == false)
        #expect(try await client.expire(p + "a", after: .seconds(30)))
        #expect(try await client.expire(p + "missing", after: .seconds(30)) == false)

        try await client.hashSet(p + "h", ["f1": "v1", "f2": "v2"])
        #expect(try await client.hashGet(p + "h", "f1") == "v1")
        #expect(try await client.hashGet(p + "h", "nope") == nil)
        #expect(try await client.hashGetAll(p + "h") == ["f1": "v1", "f2": "v2"])
        #expect(try await client.hashGetAll(p + "missing") == [:])

        #expect(try await client.increment(p + "n") == 1)
        #expect(try await client.increment(p + "n", by: 41) == 42)
        #expect(try await client.increment(p + "n", by: -2) == 40)

        for i in 0..<1_200 { try await client.set(p + "scan:\(i)", "x", expiry: .seconds(60)) }
        let scanned = try await client.scan(match: p + "scan:*", count: 100)
        #expect(scanned.count == 1_200)
        #expect(Set(scanned).count == 1_200)

        #expect(try await client.delete([p + "a", p + "b", p + "h", p + "n", p + "missing"]) == 4)
        #expect(try await client.delete(scanned) == 1_200)
        #expect(try await client.delete([]) == 0)
    }

    @Test func bulkStringsAreBinarySafe() async throws {
        let client = try RedisTestSupport.makeClient()
        defer { Task { await client.shutdown() } }
        let key = Array((RedisTestSupport.prefix() + "bin\u{0}key").utf8)
        let value: [UInt8] = [0x00, 0xFF, 0xFE, 0x00, 0x80, 0xC3, 0x28, 0x0D, 0x0A, 0x00]
        #expect(
            try await client.send(bytes: [Array("SET".utf8), key, value, Array("EX".utf8), Array("60".utf8)])
                == .simpleString("OK"))
        #expect(try await client.send(bytes: [Array("GET".utf8), key]) == .bulkString(value))
        #expect(try await client.send(bytes: [Array("STRLEN".utf8), key]) == .integer(Int64(value.count)))
        let empty = Array((RedisTestSupport.prefix() + "empty").utf8)
        _ = try await client.send(bytes: [Array("SET".utf8), empty, [], Array("EX".utf8), Array("60".utf8)])
        #expect(try await client.send(bytes: [Array("GET".utf8), empty]) == .bulkString([]))
        // Lengths of several digits (the relay formats RESP itself): 123,457 bytes come back whole.
        let large = Array((RedisTestSupport.prefix() + "large").utf8)
        let big = (0..<123_457).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        _ = try await client.send(bytes: [Array("SET".utf8), large, big, Array("EX".utf8), Array("60".utf8)])
        #expect(try await client.send(bytes: [Array("GET".utf8), large]) == .bulkString(big))
        #expect(try await client.send(bytes: [Array("DEL".utf8), large]) == .integer(1))
        _ = try await client.send(bytes: [Array("DEL".utf8), key, empty])
    }

    @Test func pipelineOfAThousandIncrements() async throws {
        let client = try RedisTestSupport.makeClient()
        defer { Task { await client.shutdown() } }
        let key = RedisTestSupport.prefix() + "counter"
        let results = try await client.pipeline(Array(repeating: ["INCR", key], count: 1_000))
        #expect(results.count == 1_000)
        #expect(try results.map { try $0.get().int } == (1...1_000).map { Int64($0) })

        // A server error fails only its own command.
        let mixed = try await client.pipeline([
            ["SET", key + ":s", "x", "EX", "60"], ["INCR", key + ":s"], ["GET", key + ":s"],
        ])
        #expect(try mixed[0].get() == .simpleString("OK"))
        #expect(throws: RedisError.self) { try mixed[1].get() }
        #expect(try mixed[2].get().string == "x")
        _ = try await client.delete([key, key + ":s"])
    }

    @Test func twoHundredConcurrentCallersOnAPoolOfFour() async throws {
        let client = try RedisTestSupport.makeClient(poolSize: 4)
        defer { Task { await client.shutdown() } }
        let key = RedisTestSupport.prefix() + "concurrent"
        let values = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<200 { group.addTask { try await client.increment(key) } }
            var values: [Int64] = []
            for try await value in group { values.append(value) }
            return values
        }
        #expect(values.sorted() == (1...200).map { Int64($0) })
        _ = try await client.delete([key])
    }

    @Test func serverErrorKeepsTheConnectionUsable() async throws {
        let client = try RedisTestSupport.makeClient(poolSize: 1)
        defer { Task { await client.shutdown() } }
        let key = RedisTestSupport.prefix() + "string"
        try await client.set(key, "not a number", expiry: .seconds(60))
        try await client.hashSet(key + ":h", ["f": "v"])
        let clientID = try await client.send(["CLIENT", "ID"]).int
        do {
            _ = try await client.increment(key + ":h")
            Issue.record("INCR on a hash must fail")
        } catch let error as RedisError {
            #expect(error.code == .server)
            #expect(error.serverErrorPrefix == "WRONGTYPE")
            #expect(error.isRetriable == false)
        }
        do {
            _ = try await client.increment(key)
            Issue.record("INCR on a non-numeric string must fail")
        } catch let error as RedisError {
            #expect(error.code == .server)
            #expect(error.serverErrorPrefix == "ERR")
        }
        // Same (single) pooled connection, still in sync.
        #expect(try await client.get(key) == "not a number")
        #expect(try await client.send(["CLIENT", "ID"]).int == clientID)
        _ = try await client.delete([key, key + ":h"])
    }

    @Test func commandTimeoutDiscardsTheConnection() async throws {
        var configuration = try RedisConfiguration(url: RedisTestSupport.url)
        configuration.poolSize = 1
        configuration.commandTimeout = .milliseconds(300)
        let client = RedisClient(configuration: configuration, logger: RedisTestSupport.logger)
        defer { Task { await client.shutdown() } }
        let before = try await client.send(["CLIENT", "ID"]).int
        do {
            _ = try await client.send(["BLPOP", RedisTestSupport.prefix() + "never", "2"])
            Issue.record("BLPOP must outlast the command timeout")
        } catch let error as RedisError {
            #expect(error.code == .timeout, "\(error)")
            #expect(error.isRetriable)
        }
        // The timed-out connection (its reply still pending) was replaced by a new one.
        let after = try await client.send(["CLIENT", "ID"]).int
        #expect(after != nil && after != before)
        try await client.ping()
    }

    @Test func callsAfterShutdownThrow() async throws {
        let client = try RedisTestSupport.makeClient()
        try await client.ping()
        await client.shutdown()
        do {
            try await client.ping()
            Issue.record("ping after shutdown must throw")
        } catch let error as RedisError {
            #expect(error.code == .shutdown)
        }
    }

    @Test func serviceRunShutsTheClientDownWhenCancelled() async throws {
        let client = try RedisTestSupport.makeClient()
        try await client.ping()
        let service = Task { try await client.run() }
        service.cancel()
        try await service.value
        do {
            try await client.ping()
            Issue.record("the service stopped the client")
        } catch let error as RedisError {
            #expect(error.code == .shutdown)
        }
    }

    @Test func cancelledWaiterLeavesThePoolHealthy() async throws {
        let client = try RedisTestSupport.makeClient(poolSize: 1)
        defer { Task { await client.shutdown() } }
        // Occupy the only connection for ~300 ms (wait until the BLPOP is written), queue a waiter, cancel
        // it. Whether the cancellation lands before or after the waiter is queued, it must not be sent.
        let written = client.commandsWrittenCount
        let blocker = Task { try await client.send(["BLPOP", RedisTestSupport.prefix() + "never", "0.3"]) }
        while client.commandsWrittenCount == written { await Task.yield() }
        let waiter = Task { try await client.ping() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        _ = try? await blocker.value
        try await client.ping()
    }
}

@Suite("RedisClient auto-pipelining")
struct RedisPipeliningTests {
    @Test func concurrentCommandsShareWriteBatches() async throws {
        let client = try RedisTestSupport.makeClient(poolSize: 1)
        defer { Task { await client.shutdown() } }
        let key = RedisTestSupport.prefix() + "batched"
        try await client.ping()
        let processedBefore = try await Self.totalCommandsProcessed(client)
        let batchesBefore = client.writeBatchCount
        let commandsBefore = client.commandsWrittenCount

        let values = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<1_000 { group.addTask { try await client.increment(key) } }
            var values: [Int64] = []
            for try await value in group { values.append(value) }
            return values
        }
        #expect(values.sorted() == (1...1_000).map { Int64($0) })

        let batches = client.writeBatchCount - batchesBefore
        let commands = client.commandsWrittenCount - commandsBefore
        let processed = try await Self.totalCommandsProcessed(client) - processedBefore
        #expect(commands == 1_000)
        #expect(processed >= 1_000)  // the server executed them all (and whatever else runs on the shared Redis)
        #expect(batches < 500, "\(batches) write batches for \(commands) commands")
        _ = try await client.delete([key])
    }

    @Test func errorRepliesFailOnlyTheirOwnCommandWithinABatch() async throws {
        let client = try RedisTestSupport.makeClient(poolSize: 1)
        defer { Task { await client.shutdown() } }
        let key = RedisTestSupport.prefix() + "mixed"
        try await client.hashSet(key + ":h", ["f": "v"])
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<200 {
                group.addTask {
                    // Every other command hits a hash with INCR: WRONGTYPE for that command only.
                    let target = index.isMultiple(of: 2) ? key + ":n" : key + ":h"
                    do {
                        _ = try await client.increment(target)
                        return (index, true)
                    } catch let error as RedisError {
                        return (index, error.serverErrorPrefix == "WRONGTYPE" ? false : true)
                    } catch {
                        return (index, true)
                    }
                }
            }
            var outcomes: [Int: Bool] = [:]
            for await (index, succeeded) in group { outcomes[index] = succeeded }
            return outcomes
        }
        for index in 0..<200 { #expect(outcomes[index] == index.isMultiple(of: 2), "command \(index)") }
        #expect(try await client.get(key + ":n") == "100")
        _ = try await client.delete([key + ":n", key + ":h"])
    }

    @Test func transportFailureFailsTheWholeBatchAndTheConnectionHeals() async throws {
        var configuration = try RedisConfiguration(url: RedisTestSupport.url)
        configuration.poolSize = 1
        configuration.commandTimeout = .milliseconds(500)
        let client = RedisClient(configuration: configuration, logger: RedisTestSupport.logger)
        defer { Task { await client.shutdown() } }
        let prefix = RedisTestSupport.prefix()
        let before = try await client.send(["CLIENT", "ID"]).int

        // One batch (a pipeline is always written as one) whose first command outlasts the command timeout:
        // every command of the batch fails with a retriable timeout, none hangs.
        do {
            let outcomes = try await client.pipeline([["BLPOP", prefix + "b", "2"], ["PING"], ["PING"], ["PING"]])
            #expect(outcomes.count == 4)
            for outcome in outcomes {
                guard case .failure(let error) = outcome else {
                    Issue.record("every command of the timed-out batch fails")
                    continue
                }
                #expect(error.code == .timeout, "\(error)")
                #expect(error.isRetriable)
            }
        } catch let error as RedisError {
            #expect(error.code == .timeout, "\(error)")
            #expect(error.isRetriable)
        }
        // A new connection replaced the one left out of sync.
        let after = try await client.send(["CLIENT", "ID"]).int
        #expect(after != nil && after != before)
        try await client.ping()
    }

    static func totalCommandsProcessed(_ client: RedisClient) async throws -> Int {
        let info = try await client.send(["INFO", "stats"]).string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("total_commands_processed:") {
            return Int(line.dropFirst("total_commands_processed:".count)) ?? 0
        }
        return 0
    }
}
