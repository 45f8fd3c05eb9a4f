import Foundation
import Klaviyo
import Logging
import Redis
import RelayTestSupport
import Synchronization
import Testing

@testable import Relay

/// The consumer's sync status writes, batched per account (``SyncStatusBuffer``), on the real Redis: one flush
/// leaves exactly the hash that one script call per command would have left, and a flush that cannot reach
/// Redis keeps its outcomes for the next one.
@Suite("Sync status buffer", .timeLimit(.minutes(1)))
struct SyncStatusBufferTests {
    let logger = Logger(label: "sync-status-buffer-test")

    /// Thirty outcomes (successes of several kinds across two hours, failures with and without Klaviyo's
    /// title), written once per command to one account and through the buffer to another: the same hash.
    @Test func oneFlushWritesWhatOneCallPerCommandWould() async throws {
        let redis = RedisClient(
            configuration: try RedisConfiguration(url: IntegrationEnvironment.redisURL), logger: logger)
        defer { Task { await redis.shutdown() } }
        let run = UUID().uuidString.lowercased().prefix(8)
        let (single, batched) = ("org-sync-single-\(run)", "org-sync-batched-\(run)")
        let status = SyncStatus(redis: redis)
        let buffer = SyncStatusBuffer(status: status, logger: logger)
        let now = Timestamp.nowMilliseconds()
        let types = ["profile.upsert", "event.track", "list.add_profiles", "account.get", "campaign.send"]
        for index in 0..<30 {
            let succeeded = index % 7 != 3
            let type = types[index % types.count]
            let detail = succeeded ? "" : "klaviyo_rejected: \(type) c\(index)"
            let title: String? = index == 10 ? "Invalid <b>email</b>" : nil
            let at = now - 3_600_000 + Int64(index) * 120_000  // across the hour boundary
            try await status.record(
                accountID: single, succeeded: succeeded, type: type, commandID: "c\(index)", detail: detail,
                items: index % 3 + 1, klaviyoTitle: title, nowMilliseconds: at)
            buffer.add(
                accountID: batched, succeeded: succeeded, type: type, commandID: "c\(index)", detail: detail,
                items: index % 3 + 1, klaviyoTitle: title, nowMilliseconds: at)
        }
        #expect(buffer.pendingAccounts == 1)
        #expect(try await redis.hashGetAll(RedisKeys.sync(batched)).isEmpty, "nothing written before the flush")
        await buffer.flush()
        #expect(buffer.pendingAccounts == 0)
        let expected = try await redis.hashGetAll(RedisKeys.sync(single))
        let written = try await redis.hashGetAll(RedisKeys.sync(batched))
        #expect(Set(written.keys) == Set(expected.keys))
        for field in ["succeeded", "failed", "last_success_at", "last_error_at", "last_error", "last_error_code"] {
            #expect(written[field] == expected[field], "\(field)")
        }
        #expect(expected["succeeded"] == "26" && expected["failed"] == "4")
        // JSON fields compare as values (Lua's cjson orders object keys as it likes).
        for field in ["history", "hourly"] {
            let mine = try JSONValue.parse(Array((written[field] ?? "").utf8))
            let theirs = try JSONValue.parse(Array((expected[field] ?? "").utf8))
            #expect(mine == theirs, "\(field): \(written[field] ?? "") vs \(expected[field] ?? "")")
        }
        let history = try JSONValue.parse(Array((written["history"] ?? "").utf8)).arrayValue ?? []
        #expect(history.count == 20 && history.last?["command_id"] == "c29" && history.first?["command_id"] == "c10")
        let snapshot = try await status.snapshot(accountID: batched)
        #expect(snapshot == (try await status.snapshot(accountID: single)))
        _ = try await redis.send(["DEL", RedisKeys.sync(single), RedisKeys.sync(batched)])
    }

    /// Redis unreachable: the flush keeps the outcomes, merged before what arrives meanwhile; once a buffer
    /// with the same outcomes can write, the counts are all there.
    @Test func aFailedFlushKeepsItsOutcomesForTheNext() async throws {
        let closed = try freePort()
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(closed)/0")
        configuration.commandTimeout = .seconds(1)
        let unreachable = RedisClient(configuration: configuration, logger: logger)
        defer { Task { await unreachable.shutdown() } }
        let buffer = SyncStatusBuffer(status: SyncStatus(redis: unreachable, historyLimit: 3), logger: logger)
        let now = Timestamp.nowMilliseconds()
        for index in 0..<4 {
            buffer.add(
                accountID: "org-a", succeeded: true, type: "event.track", commandID: "e\(index)", detail: "",
                nowMilliseconds: now + Int64(index))
        }
        await buffer.flush()
        #expect(buffer.pendingAccounts == 1, "the failed batch was kept")
        buffer.add(
            accountID: "org-a", succeeded: false, type: "event.track", commandID: "e4",
            detail: "klaviyo_rejected: e4", nowMilliseconds: now + 10)
        let kept = buffer.pending.withLock { $0["org-a"] }
        #expect(kept?.succeeded == 4 && kept?.failed == 1)
        #expect(kept?.history.map(\.commandID) == ["e2", "e3", "e4"])
        #expect(kept?.items.values.first?["events"] == 4)
        #expect(kept?.lastError?.code == "klaviyo_rejected")
    }

    /// A Redis outage fails every flush (four a second): the first failure warns at once, the next ones only
    /// after ``SyncStatusBuffer/warningInterval`` with how many failed since, and the first full flush after them
    /// says so once. (Each failed flush used to warn: 91 lines in 23 s of a shard outage.)
    @Test func failedFlushesWarnOncePerIntervalAndTheRecoveryOnce() async throws {
        let closed = try freePort()
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(closed)/0")
        configuration.commandTimeout = .seconds(1)
        let unreachable = RedisClient(configuration: configuration, logger: logger)
        defer { Task { await unreachable.shutdown() } }
        let logs = CapturedLogs()
        let buffer = SyncStatusBuffer(
            status: SyncStatus(redis: unreachable), warningInterval: .seconds(3600),
            logger: Logger(label: "sync-status-buffer-test") { _ in CapturedLogs.Handler(logs: logs) })
        buffer.add(accountID: "org-a", succeeded: true, type: "event.track", commandID: "e0", detail: "")
        for _ in 0..<5 { await buffer.flush() }
        #expect(buffer.pendingAccounts == 1, "the outcomes are kept")
        let warnings = { logs.lines.withLock { $0.filter { $0.level == .warning } } }
        #expect(warnings().count == 1, "\(warnings().map(\.message))")
        #expect(warnings().first?.metadata["failed_flushes"] == "1")
        // Past the interval, the next failed flush warns again, counting the four before it.
        buffer.reportFlush(failedAccounts: 1, now: .now + .seconds(3601))
        #expect(warnings().count == 2)
        #expect(warnings().last?.metadata["failed_flushes"] == "5")
        // A flush that writes everything says so, once.
        buffer.reportFlush(failedAccounts: 0)
        buffer.reportFlush(failedAccounts: 0)
        let recovered = logs.lines.withLock { $0.filter { $0.message.contains("written again") } }
        #expect(recovered.count == 1 && recovered.first?.level == .info)
    }

    /// A kept batch followed by a later one: counts add up, the later last success/error win, history keeps
    /// the newest entries in order, hourly items add up per hour and kind.
    @Test func aKeptBatchMergesBeforeALaterOne() {
        var older = SyncStatus.Batch()
        var later = SyncStatus.Batch()
        let hour: Int64 = 3_600_000
        older.add(
            succeeded: true, type: "event.track", commandID: "a", detail: "", items: 2, nowMilliseconds: 5 * hour,
            historyLimit: 3)
        older.add(
            succeeded: false, type: "event.track", commandID: "b", detail: "klaviyo_rejected: b",
            nowMilliseconds: 5 * hour + 1, historyLimit: 3)
        later.add(
            succeeded: true, type: "event.track", commandID: "c", detail: "", items: 3, nowMilliseconds: 5 * hour + 2,
            historyLimit: 3)
        later.add(
            succeeded: true, type: "profile.upsert", commandID: "d", detail: "", nowMilliseconds: 6 * hour,
            historyLimit: 3)
        let merged = older.merged(with: later, historyLimit: 3)
        #expect(merged.succeeded == 3 && merged.failed == 1)
        #expect(merged.history.map(\.commandID) == ["b", "c", "d"])
        #expect(merged.items == [5: ["events": 5], 6: ["profiles": 1]])
        #expect(merged.lastSuccessAt == Timestamp.format(milliseconds: 6 * hour))
        #expect(merged.lastError?.detail == "klaviyo_rejected: b" && merged.hour == 6)
    }
}

/// Keeps every log line of a logger (a test reads what was logged).
final class CapturedLogs: Sendable {
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    let lines = Mutex<[Line]>([])

    struct Handler: LogHandler {
        let logs: CapturedLogs
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var all: [String: String] = [:]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
                all[key] = "\(value)"
            }
            logs.lines.withLock { $0.append(Line(level: event.level, message: "\(event.message)", metadata: all)) }
        }
    }
}
