import Redis

/// The account's refresh lock (`kr:{<account>}:lock`, the one ``TokenManager`` refreshes under), taken by a
/// connection change that reads the stored refresh token and acts on it at Klaviyo: disconnecting (read → revoke →
/// state change) and replacing an OAuth connection with an API key (read → replace). Held, no refresh can rotate
/// the token between the read and the change, so the token revoked is the one Klaviyo holds. (Unlocked, a refresh
/// that rotated the token just before its commit was fenced off by the change: the newer token stayed live at
/// Klaviyo, known to nobody, and the app stayed installed.)
struct AccountLock: Sendable {
    /// Why the lock was not taken.
    struct Busy: Error, Sendable, CustomStringConvertible {
        var accountID: String
        var description: String { "the connection of \(accountID) is busy (a token refresh holds its lock)" }
    }

    /// Points where tests observe a change waiting for the lock.
    struct Hooks: Sendable {
        /// Called once when the lock was found held by someone else.
        var waiting: (@Sendable (String) async -> Void)?
    }

    let redis: RedisClient
    /// How long the lock lives if its holder dies; ``TokenManager/Settings/lockTTL``.
    let ttl: Duration
    let hooks: Hooks

    /// `SET NX PX`, or 1 when the lock is already ours (a run whose reply was lost and that is sent again).
    /// KEYS: lock. ARGV: owner, milliseconds. Returns 1 when taken, 0 when someone else holds it.
    static let takeScript = RedisScript(
        """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
        if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
        return 0
        """)

    /// Runs `body` holding the account's lock. Waits for a holder up to its TTL and a second (a refresh ends
    /// within 90 % of the TTL, and a dead holder's lock expires by then); throws ``Busy`` beyond that.
    func run<T: Sendable>(accountID: String, _ body: () async throws -> T) async throws -> T {
        let key = RedisKeys.lock(accountID)
        let owner = PKCE.randomToken()
        let deadline = ContinuousClock.now + ttl + .seconds(1)
        var pause = Duration.milliseconds(10)
        var announced = false
        while try await (redis.run(Self.takeScript, keys: [key], arguments: [owner, String(ttl.wholeMilliseconds)]))
            .int != 1
        {
            guard ContinuousClock.now < deadline else { throw Busy(accountID: accountID) }
            if !announced {
                announced = true
                await hooks.waiting?(accountID)
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(200))
        }
        do {
            let value = try await body()
            await release(key, owner: owner)
            return value
        } catch {
            await release(key, owner: owner)
            throw error
        }
    }

    /// Compare-and-delete; a lock left behind expires by itself.
    func release(_ key: String, owner: String) async {
        _ = try? await redis.run(TokenManager.releaseScript, keys: [key], arguments: [owner])
    }
}
