import Synchronization

/// A bounded ring buffer of the API requests the simulator answered (`GET /_sim/requests`).
final class RequestRecorder: Sendable {
    /// One recorded request; `headers` hold only revision, content-type, accept, user-agent and a redacted
    /// authorization.
    struct Entry: Sendable {
        var seq: Int
        var method: String
        var path: String
        var query: String
        var headers: [String: String]
        var body: JSONValue?
        var status: Int
        var accountId: String?

        var json: JSONValue {
            [
                "seq": .int(seq), "method": .string(method), "path": .string(path), "query": .string(query),
                "headers": .object(headers.mapValues { .string($0) }), "body": body ?? .null, "status": .int(status),
                "account_id": .optional(accountId),
            ]
        }
    }

    struct State: Sendable {
        var buffer: [Entry] = []
        var head = 0  // index of the oldest entry once full
        var nextSeq = 1
    }

    let capacity: Int
    let state = Mutex(State())

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// The sequence number of the newest entry (0 when nothing was recorded).
    var lastSeq: Int { state.withLock { $0.nextSeq - 1 } }

    /// Appends an entry, assigning its sequence number.
    func record(_ entry: Entry) {
        state.withLock { s in
            var e = entry
            e.seq = s.nextSeq
            s.nextSeq += 1
            if s.buffer.count < capacity {
                s.buffer.append(e)
            } else {
                s.buffer[s.head] = e
                s.head = (s.head + 1) % capacity
            }
        }
    }

    /// Entries with `seq > since`, oldest first, at most `limit`; plus the `next_seq` to pass as `since`.
    func entries(since: Int, limit: Int) -> (entries: [Entry], nextSeq: Int) {
        state.withLock { s in
            var out: [Entry] = []
            let n = s.buffer.count
            guard n > 0 else { return ([], since) }
            // Entries are contiguous in seq; the oldest is at `head`.
            let oldestSeq = s.buffer[s.head].seq
            let startOffset = max(0, since + 1 - oldestSeq)
            var i = startOffset
            while i < n, out.count < limit {
                out.append(s.buffer[(s.head + i) % n])
                i += 1
            }
            return (out, out.last?.seq ?? max(since, oldestSeq - 1))
        }
    }

    /// Forgets everything, including the sequence counter.
    func reset() { state.withLock { $0 = State() } }

    /// Reduces an Authorization value to its scheme, e.g. `Klaviyo-API-Key pk_…REDACTED`.
    static func redact(_ authorization: String) -> String {
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard let scheme = parts.first else { return "REDACTED" }
        let hint = parts.count > 1 && parts[1].hasPrefix("pk_") ? "pk_" : ""
        return "\(scheme) \(hint)…REDACTED"
    }
}
