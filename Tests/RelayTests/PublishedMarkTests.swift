import Foundation
import Logging
import Redis
import Relay
import RelayTestSupport
import Testing

/// Published marks ride along with other commands' Redis round trips (``IdempotencyStore/markPublishedSoon(_:)``),
/// against the real Redis.
@Suite("Published marks")
struct PublishedMarkTests {
    static func command(_ account: String, _ index: Int) throws -> CommandEnvelope {
        try ProfileCoalescerTests.upsert(account: account, index: index, email: "u\(index)@example.com")
    }

    static func marker(
        _ redis: RedisClient, _ command: CommandEnvelope
    ) async throws -> (published: String?, ttl: Int64) {
        let key = "kr:{\(command.accountID)}:idem:\(command.id)"
        let published = try await redis.send(["HGET", key, "published"]).string
        let ttl = try await redis.send(["PTTL", key]).int ?? -3
        return (published, ttl)
    }

    /// With an idle flush far away (an hour), only another command's lookup or record can write the mark: both do,
    /// in their own round trip, and the marker keeps its lifetime.
    @Test func aQueuedMarkIsWrittenByTheNextLookupAndRecord() async throws {
        let redis = try ProfileCoalescerTests.redis()
        defer { Task { await redis.shutdown() } }
        let store = IdempotencyStore(redis: redis, ttl: .seconds(60), markFlushDelay: .seconds(3600))
        let account = "mark-\(UUID().uuidString.lowercased())"
        let first = try Self.command(account, 1)
        let second = try Self.command(account, 2)
        let third = try Self.command(account, 3)

        #expect(try await store.lookup(first) == .fresh)
        try await store.record(first, result: Array(#"{"outcome":"succeeded"}"#.utf8))
        store.markPublishedSoon(first)
        #expect(store.pendingMarkCount == 1)
        #expect(try await Self.marker(redis, first).published == "0", "not written before a round trip carries it")

        // The next command's lookup carries it, and still answers for its own command.
        #expect(try await store.lookup(second) == .fresh)
        #expect(store.pendingMarkCount == 0)
        let marker = try await Self.marker(redis, first)
        #expect(marker.published == "1")
        #expect(marker.ttl > 0 && marker.ttl <= 60_000)
        guard case .done(let record) = try await store.lookup(first) else {
            Issue.record("the first command is done")
            return
        }
        #expect(record.published)

        // A record pipeline carries marks too.
        try await store.record(second, result: Array(#"{"outcome":"succeeded"}"#.utf8))
        store.markPublishedSoon(second)
        try await store.record(third, result: Array(#"{"outcome":"failed"}"#.utf8))
        #expect(store.pendingMarkCount == 0)
        #expect(try await Self.marker(redis, second).published == "1")
        #expect(try await Self.marker(redis, third).published == "0", "its own mark was never queued")
    }

    /// With nothing else going on, a queued mark is written on its own within the flush delay; a mark whose
    /// marker already expired does not bring it back without a lifetime.
    @Test func anIdleStoreWritesItsMarksOnItsOwn() async throws {
        let redis = try ProfileCoalescerTests.redis()
        defer { Task { await redis.shutdown() } }
        let store = IdempotencyStore(redis: redis, ttl: .seconds(60), markFlushDelay: .milliseconds(10))
        let account = "mark-\(UUID().uuidString.lowercased())"
        let commands = try (1...300).map { try Self.command(account, $0) }
        for command in commands {
            try await store.record(command, result: Array(#"{"outcome":"succeeded"}"#.utf8))
        }
        // More marks than one pipeline carries (128): the flusher goes on until none is left.
        for command in commands { store.markPublishedSoon(command) }
        try await eventually("every mark written", timeout: .seconds(10)) { store.pendingMarkCount == 0 }
        for command in [commands[0], commands[150], commands[299]] {
            #expect(try await Self.marker(redis, command).published == "1")
        }

        let gone = try Self.command(account, 999)
        store.markPublishedSoon(gone)
        try await eventually("the lone mark written", timeout: .seconds(10)) {
            try await Self.marker(redis, gone).published == "1"
        }
        #expect(try await Self.marker(redis, gone).ttl > 0, "PEXPIRE NX gives the recreated hash a lifetime")
    }

    /// A round trip that fails keeps the marks it carried queued for the next one; the failure is the lookup's own.
    @Test func marksOfAFailedRoundTripStayQueued() async throws {
        var logger = Logger(label: "published-mark-tests")
        logger.logLevel = .critical
        let unreachable = RedisClient(
            configuration: RedisConfiguration(
                port: 1, connectTimeout: .milliseconds(300), commandTimeout: .milliseconds(500)),
            logger: logger)
        defer { Task { await unreachable.shutdown() } }
        let store = IdempotencyStore(redis: unreachable, ttl: .seconds(60), markFlushDelay: .seconds(3600))
        let account = "mark-\(UUID().uuidString.lowercased())"
        store.markPublishedSoon(try Self.command(account, 1))
        store.markPublishedSoon(try Self.command(account, 2))
        await #expect(throws: RedisError.self) { try await store.lookup(try Self.command(account, 3)) }
        #expect(store.pendingMarkCount == 2)
        await #expect(throws: RedisError.self) { try await store.flushMarks() }
        #expect(store.pendingMarkCount == 2)
    }
}

/// Job records written before they moved under the account (`kr:job:<id>`) name no account.
@Suite("Legacy job records")
struct LegacyJobRecordTests {
    @Test func aLegacyJobRecordIsReadOnlyForAJobPoll() async throws {
        let redis = try ProfileCoalescerTests.redis()
        defer { Task { await redis.shutdown() } }
        let store = IdempotencyStore(redis: redis, ttl: .seconds(60))
        let command = try PublishedMarkTests.command(uniqueName("legacy"), 1)
        let legacy = "kr:job:\(command.id)"
        _ = try await redis.send(["SET", legacy, #"{"job_id":"job-of-another-account"}"#, "PX", "60000"])
        defer { Task { _ = try? await redis.send(["DEL", legacy]) } }
        // A fresh command reusing the id (another account's, perhaps) does not adopt the job.
        #expect(try await store.jobState(command) == nil)
        // A poll parked before job records moved still finds its job.
        #expect(try await store.jobState(command, polling: true) == #"{"job_id":"job-of-another-account"}"#)
        // The account's own record wins either way.
        try await store.recordJobState(command, state: #"{"job_id":"own"}"#)
        #expect(try await store.jobState(command) == #"{"job_id":"own"}"#)
        #expect(try await store.jobState(command, polling: true) == #"{"job_id":"own"}"#)
    }
}
