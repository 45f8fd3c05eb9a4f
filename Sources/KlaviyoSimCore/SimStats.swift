import Synchronization

/// Request counters for `GET /_sim/stats`.
final class SimStats: Sendable {
    struct State: Sendable {
        var total = 0
        var byOperation: [String: Int] = [:]
        var byStatus: [Int: Int] = [:]
        var tokenCalls: [String: Int] = [:]
        var tokenCallsByClient: [String: [String: Int]] = [:]
    }

    let state = Mutex(State())

    /// Counts one answered API request.
    func count(operation: String, status: Int) {
        state.withLock { s in
            s.total += 1
            s.byOperation[operation, default: 0] += 1
            s.byStatus[status, default: 0] += 1
        }
    }

    /// Counts one token-endpoint outcome (`authorization_code`, `refresh_token`, `revoke`, `invalid_grant`, …).
    func countTokenCall(_ kind: String) {
        state.withLock { $0.tokenCalls[kind, default: 0] += 1 }
    }

    /// Counts one token-endpoint outcome of a known OAuth app too (`token_calls_by_client`), so tests sharing the
    /// simulator can read their own app's counts.
    func countTokenCall(_ kind: String, client: String) {
        state.withLock { s in
            s.tokenCalls[kind, default: 0] += 1
            s.tokenCallsByClient[client, default: [:]][kind, default: 0] += 1
        }
    }

    func reset() { state.withLock { $0 = State() } }

    var json: JSONValue {
        state.withLock { s in
            [
                "requests_total": .int(s.total),
                "by_operation": .object(s.byOperation.mapValues { .int($0) }),
                "by_status": .object(
                    Dictionary(uniqueKeysWithValues: s.byStatus.map { (String($0.key), .int($0.value)) })),
                "token_calls": .object(s.tokenCalls.mapValues { .int($0) }),
                "token_calls_by_client": .object(
                    s.tokenCallsByClient.mapValues { .object($0.mapValues { .int($0) }) }),
            ]
        }
    }
}
