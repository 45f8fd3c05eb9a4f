public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Gathers a consumer process's finished commands per account and writes them to the accounts' sync status
/// (``SyncStatus``) every ``interval``, one script call per account and flush (issue #8, per-command cost:
/// a script per command decoded and re-encoded the account's history and hourly counts in Redis each time).
///
/// The sync status is what `serve` shows the merchant (last success, last error, what was synced), not a
/// delivery guarantee: results, dead letters and done markers are written per command as before. What the
/// buffer holds is written on graceful shutdown; a process killed outright loses at most one interval of
/// counts (documented in docs/operations.md). A flush that fails (Redis unreachable) keeps its batches and
/// merges them into the next, so outcomes are counted late rather than never, up to ``maxPendingAccounts``.
public final class SyncStatusBuffer: Service, Sendable {
    /// Where the batches go.
    public let status: SyncStatus
    /// How long outcomes gather before they are written.
    public let interval: Duration
    /// Most accounts a failing Redis may leave waiting; outcomes of further accounts are dropped (and counted in
    /// `relay_sync_status_dropped_total`) rather than grow the process without bound.
    public let maxPendingAccounts: Int
    /// Shortest time between two warnings about failed flushes while they go on (a flush runs every ``interval``:
    /// during a Redis outage a warning per flush was several lines a second per process).
    public let warningInterval: Duration
    let logger: Logger
    let pending = Mutex([String: SyncStatus.Batch]())
    /// Failed flushes in a row: when the last warning went out, and how many failed since it.
    let failures = Mutex<(lastWarning: ContinuousClock.Instant?, unreported: Int)>((nil, 0))

    /// Creates a buffer writing to `status` every `interval`.
    public init(
        status: SyncStatus, interval: Duration = .milliseconds(250), maxPendingAccounts: Int = 100_000,
        warningInterval: Duration = .seconds(60), logger: Logger
    ) {
        self.status = status
        self.interval = interval
        self.maxPendingAccounts = maxPendingAccounts
        self.warningInterval = warningInterval
        self.logger = logger
    }

    /// Adds one finished command (see ``SyncStatus/record(accountID:succeeded:type:commandID:detail:items:klaviyoTitle:nowMilliseconds:)``).
    public func add(
        accountID: String, succeeded: Bool, type: String, commandID: String, detail: String, items: Int = 1,
        klaviyoTitle: String? = nil, nowMilliseconds: Int64 = Timestamp.nowMilliseconds()
    ) {
        let historyLimit = status.historyLimit
        let dropped = pending.withLock { pending -> Bool in
            if pending[accountID] == nil, pending.count >= maxPendingAccounts { return true }
            pending[accountID, default: SyncStatus.Batch()].add(
                succeeded: succeeded, type: type, commandID: commandID, detail: detail, items: items,
                klaviyoTitle: klaviyoTitle, nowMilliseconds: nowMilliseconds, historyLimit: historyLimit)
            return false
        }
        if dropped { Counter(label: "relay_sync_status_dropped_total").increment() }
    }

    /// Accounts with outcomes not written yet.
    public var pendingAccounts: Int { pending.withLock { $0.count } }

    /// Writes every account's outcomes gathered so far (one script call each, concurrently). Batches that could
    /// not be written go back, merged before anything gathered meanwhile.
    public func flush() async {
        let batches = pending.withLock { pending in
            let taken = pending
            pending = [:]
            return taken
        }
        guard !batches.isEmpty else { return }
        let status = self.status
        let failed = await withTaskGroup(of: (String, SyncStatus.Batch)?.self) { group in
            for (accountID, batch) in batches {
                group.addTask {
                    do {
                        try await status.record(accountID: accountID, batch)
                        return nil
                    } catch {
                        return (accountID, batch)
                    }
                }
            }
            var failed: [(String, SyncStatus.Batch)] = []
            for await result in group { if let result { failed.append(result) } }
            return failed
        }
        reportFlush(failedAccounts: failed.count)
        guard !failed.isEmpty else { return }
        let historyLimit = status.historyLimit
        pending.withLock { pending in
            for (accountID, older) in failed {
                if let newer = pending[accountID] {
                    pending[accountID] = older.merged(with: newer, historyLimit: historyLimit)
                } else {
                    pending[accountID] = older
                }
            }
        }
    }

    /// Logs a failed flush: the first of a run of failures at once, then at most once per ``warningInterval``
    /// with how many failed since; the first full flush after failures says so once.
    func reportFlush(failedAccounts: Int, now: ContinuousClock.Instant = .now) {
        enum Report {
            case none
            case warn(failedSince: Int)
            case recovered(failed: Int)
        }
        let report = failures.withLock { state -> Report in
            guard failedAccounts > 0 else {
                guard state.lastWarning != nil else { return .none }
                let failed = state.unreported
                state = (nil, 0)
                return .recovered(failed: failed)
            }
            state.unreported += 1
            if let last = state.lastWarning, now - last < warningInterval { return .none }
            let failedSince = state.unreported
            state = (now, 0)
            return .warn(failedSince: failedSince)
        }
        switch report {
        case .none:
            break
        case .warn(let failedSince):
            logger.warning(
                "could not write the sync status of some accounts; kept for the next flush",
                metadata: ["accounts": "\(failedAccounts)", "failed_flushes": "\(failedSince)"])
        case .recovered(let failed):
            logger.info(
                "sync status written again after failed flushes",
                metadata: ["failed_flushes_since_last_warning": "\(failed)"])
        }
    }

    /// Flushes every ``interval`` until graceful shutdown or cancellation, then once more.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: self.interval)
                } catch {
                    break
                }
                await self.flush()
            }
        }
        await flush()
    }
}

extension SyncStatus.Batch {
    /// This batch followed by a later one of the same account.
    func merged(with later: SyncStatus.Batch, historyLimit: Int) -> SyncStatus.Batch {
        var merged = self
        merged.succeeded += later.succeeded
        merged.failed += later.failed
        merged.lastSuccessAt = later.lastSuccessAt ?? lastSuccessAt
        merged.lastError = later.lastError ?? lastError
        merged.history = Array((history + later.history).suffix(max(historyLimit, 1)))
        for (hour, counts) in later.items {
            for (kind, count) in counts { merged.items[hour, default: [:]][kind, default: 0] += count }
        }
        merged.hour = max(hour, later.hour)
        return merged
    }
}
