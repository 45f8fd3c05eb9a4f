public import Logging
public import ServiceLifecycle

/// Keeps idle OAuth connections alive: Klaviyo expires a refresh token after 90 days without use, so every
/// `interval` (jittered) this service looks at the stored connections and refreshes the OAuth ones whose
/// tokens were last written more than `idleAge` ago. Refreshes go through the ``TokenManager``, so they are
/// single-flighted across all processes (Redis lock + version fence) like any other refresh; every consumer
/// runs the sweep, and whoever refreshes first moves `updated_at` so the others skip the account.
public struct KeepAliveService: Service {
    let store: CredentialStore
    let tokenManager: TokenManager
    let idleAge: Duration
    let interval: Duration
    let logger: Logger

    /// Creates the service.
    public init(
        store: CredentialStore, tokenManager: TokenManager, idleAge: Duration, interval: Duration, logger: Logger
    ) {
        self.store = store
        self.tokenManager = tokenManager
        self.idleAge = idleAge
        self.interval = interval
        self.logger = logger
    }

    /// Sweeps every `interval` until graceful shutdown.
    public func run() async throws {
        // The first sweep waits one (jittered) interval too, so a fleet of consumers starting together does not
        // scan Redis at once.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let pause = interval * Double.random(in: 0.8...1.2)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            do {
                let keys = try await store.redis.scan(match: "kr:{*}:conn")
                let refreshed = await sweep(accountIDs: keys.compactMap(Self.accountID(fromConnectionKey:)))
                if refreshed > 0 {
                    logger.info("keep-alive refreshed idle OAuth connections", metadata: ["count": "\(refreshed)"])
                }
            } catch {
                logger.warning("keep-alive sweep failed; will try again", metadata: [LogKeys.errorDetail: "\(error)"])
            }
        }
    }

    /// Refreshes those of `accountIDs` that are OAuth, connected and idle longer than `idleAge`; returns how
    /// many this call refreshed (others may have done it first).
    public func sweep(accountIDs: [String], nowMilliseconds: Int64 = Timestamp.nowMilliseconds()) async -> Int {
        var refreshed = 0
        for accountID in accountIDs {
            let loaded: ConnectionRecord?
            do {
                loaded = try await store.load(accountID: accountID)
            } catch let unreadable as CredentialUnreadable {
                // Cannot be kept alive until its key is restored (or the customer reconnects); say so each sweep.
                logger.warning(
                    "keep-alive skips a connection it cannot decrypt",
                    metadata: [
                        LogKeys.accountID: "\(accountID)", LogKeys.keyID: "\(unreadable.keyID)",
                        LogKeys.errorDetail: "\(unreadable)",
                    ])
                continue
            } catch {
                continue
            }
            guard let record = loaded, record.method == .oauth,
                record.state == .connected, let updatedAt = record.updatedAt.flatMap(Timestamp.parseMilliseconds)
            else { continue }
            guard nowMilliseconds - updatedAt >= idleAge.components.seconds * 1000 else { continue }
            do {
                let fresh = try await tokenManager.refreshAfterUnauthorized(record)
                if fresh.version != record.version { refreshed += 1 }
            } catch {
                logger.warning(
                    "keep-alive refresh failed",
                    metadata: [LogKeys.accountID: "\(accountID)", LogKeys.errorDetail: "\(error)"])
            }
        }
        return refreshed
    }

    /// `kr:{org_42}:conn` → `org_42`.
    public static func accountID(fromConnectionKey key: String) -> String? {
        guard key.hasPrefix("kr:{"), key.hasSuffix("}:conn"), key.count > 10 else { return nil }
        return String(key.dropFirst(4).dropLast(6))
    }
}
