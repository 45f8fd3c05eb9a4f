public import Klaviyo
public import Logging
import Metrics
import Synchronization

/// Coalesces the `event.track` calls of one account into Klaviyo's bulk endpoint under load (docs/operations.md,
/// "Batching"). One per process, shared by all consumers.
///
/// The first event submitted for a key (account and credential) opens a batch; the batch is sent when it
/// holds ``maxEvents`` events (Klaviyo's 1,000 per bulk job), when the next event would push its body past
/// ``maxBytes`` (the 4.5 MB of `event.bulk_track`, under Klaviyo's 5 MB), or when ``window`` has elapsed since
/// it opened **and** no earlier batch of the key is still waiting for Klaviyo's allowance **and** the key's
/// last call went out at least ``pace`` ago. So batch sizes follow the backlog: a trickle goes out after the
/// window, a backlog fills each batch while the previous one waits for its slot of `bulk_create_events`
/// (10/s, 150/min), up to 1,000 events per call, 43× what `create_event` alone allows.
///
/// Why ``pace``: the burst window (10/s) admits small batches at once, so without it a backlog spends the
/// minute's 150 calls in its first 15 s on batches of a few hundred events and then waits out the rest of the
/// minute (measured: 20× `create_event` instead of 43×). Spacing the calls that are not full by the steady
/// interval (60 s / 150 = 400 ms) keeps those calls within the steady quota; full batches go at once. A batch of one event is sent with `create_event` exactly as without batching;
/// two or more go in one `bulk_create_events` call. Only the call is shared: every submitter learns the
/// outcome and goes on with its own result, retry or dead letter.
///
/// A batched event gives its consumer slot back while it waits (``ConcurrencySlot``): only its delivery stays
/// unacked (the events queue's prefetch bounds how many), and the shared call waits inline for its slot up to
/// ``admissionWait``.
///
/// The call runs in its own task: cancelling a submitter never cancels the others' call, and a submitter
/// waits at most the window plus the call (nothing waits for more events indefinitely).
public final class EventBatcher: Sendable {
    /// How a submitted event went to Klaviyo.
    public enum Delivery: Sendable {
        /// Alone, with `create_event` (Klaviyo's status).
        case single(status: Int)
        /// In one `bulk_create_events` call of `size` events (Klaviyo's status).
        case batched(status: Int, size: Int)
        /// The bulk call was refused for a reason one event may cause (a permanent 4xx), or the rate limiter
        /// held it back: the submitter sends its own event with `create_event`.
        case sendAlone(reason: KlaviyoError)
    }

    /// What batches are keyed by: events of different accounts or credentials never share a call. The
    /// credential stays in memory only (never logged): a refreshed OAuth token starts new batches.
    struct Key: Hashable {
        let accountID: String
        let credential: KlaviyoCredential
    }

    struct Entry {
        let event: KlaviyoEvent
        let continuation: CheckedContinuation<Result<Delivery, KlaviyoError>, Never>
    }

    struct Batch {
        let id: UInt64
        let accountID: String
        let credential: KlaviyoCredential
        /// The (rate-limit gated) client of the command that opened the batch.
        let client: KlaviyoClient
        let opened: ContinuousClock.Instant
        var entries: [Entry]
        var bytes: Int
        /// The window ended while an earlier batch of the key was waiting for its slot.
        var due = false
    }

    struct State {
        var open: [Key: Batch] = [:]
        /// Batches per key sent but not yet admitted by the rate limiter.
        var awaiting: [Key: Int] = [:]
        /// When each key's last call went out (for ``pace``; entries older than it are pruned).
        var lastSent: [Key: ContinuousClock.Instant] = [:]
        var nextID: UInt64 = 0
        /// The calls still waiting for their rate-limit slot, by batch id (cancelled by ``stopWaiting()``).
        var waiting: [UInt64: Task<Void, Never>] = [:]
        /// Set by ``stopWaiting()``: calls from now on do not wait inline for a slot.
        var stopping = false
    }

    /// How long a batch collects events after it opened (`RELAY_BATCH_WINDOW`, > 0).
    public let window: Duration
    /// Most events per call.
    public let maxEvents: Int
    /// Most bytes of events (each measured as its `create_event` body) per call.
    public let maxBytes: Int
    /// Longest a batch's call waits inline for its rate-limit slot (a little more than the steady window, so
    /// a backlog never parks its events).
    public let admissionWait: Duration
    /// Least time between two calls of a key whose batch is not full (nil: none), ``defaultPace`` by default.
    public let pace: Duration?
    let logger: Logger
    let state = Mutex(State())

    /// Creates a batcher. `maxEvents` and `maxBytes` default to the limits of `event.bulk_track`.
    public init(
        window: Duration, maxEvents: Int = KlaviyoClient.maxEventsPerBulkJob,
        maxBytes: Int = EventBulkTrackPayload.maxBatchBytes, admissionWait: Duration = .seconds(65),
        pace: Duration? = EventBatcher.defaultPace(share: 1), logger: Logger
    ) {
        precondition(window > .zero, "a batch window of 0 means no batcher")
        self.window = window
        self.maxEvents = max(1, min(maxEvents, KlaviyoClient.maxEventsPerBulkJob))
        self.maxBytes = maxBytes
        self.admissionWait = admissionWait
        self.pace = pace.flatMap { $0 > .zero ? $0 : nil }
        self.logger = logger
    }

    /// The steady interval of `bulk_create_events` (60 s / 150 calls = 400 ms) for a relay that may use `share`
    /// of Klaviyo's limits (`RELAY_RATE_LIMIT_SHARE`).
    public static func defaultPace(share: Double) -> Duration? {
        guard let limit = KlaviyoRateLimits.table["bulk_create_events"], share > 0 else { return nil }
        let steady = max(1, Int(Double(limit.steady) * min(share, 1)))
        return .milliseconds(60_000 / steady)
    }

    /// Unacked deliveries the events queue should allow a process beyond its concurrency: two full batches
    /// per busy account (one waiting for its slot, one filling).
    public static let extraPrefetch = 2 * KlaviyoClient.maxEventsPerBulkJob

    /// Events waiting in open batches (all keys).
    public var pendingEvents: Int {
        state.withLock { $0.open.values.reduce(0) { $0 + $1.entries.count } }
    }

    /// Submits one event of `accountID` and waits until the call that carried it answered.
    ///
    /// - Throws: the call's error when it failed in a way every event shares (429, 5xx, transport, 401,
    ///   403, the limiter's store unreachable); each submitter then takes its own retry path.
    public func submit(
        _ event: KlaviyoEvent, accountID: String, credential: KlaviyoCredential, client: KlaviyoClient
    ) async throws(KlaviyoError) -> Delivery {
        let bytes = KlaviyoClient.createEventRequest(event).body?.jsonBytes().count ?? 0
        let key = Key(accountID: accountID, credential: credential)
        let result = await withCheckedContinuation { continuation in
            let entry = Entry(event: event, continuation: continuation)
            let (ready, timed) = state.withLock { state -> ([Batch], UInt64?) in
                var ready: [Batch] = []
                if var batch = state.open[key], batch.bytes + bytes <= maxBytes {
                    batch.entries.append(entry)
                    batch.bytes += bytes
                    if batch.entries.count >= maxEvents {
                        state.open[key] = nil
                        state.awaiting[key, default: 0] += 1
                        state.lastSent[key] = .now
                        ready.append(batch)
                    } else {
                        state.open[key] = batch
                    }
                    return (ready, nil)
                }
                // No open batch, or this event does not fit: send the full one and open a new one.
                if let full = state.open.removeValue(forKey: key) {
                    state.awaiting[key, default: 0] += 1
                    state.lastSent[key] = .now
                    ready.append(full)
                }
                pruneLastSent(&state)
                state.nextID += 1
                let batch = Batch(
                    id: state.nextID, accountID: accountID, credential: credential, client: client,
                    opened: .now, entries: [entry], bytes: bytes)
                if maxEvents == 1 {
                    state.awaiting[key, default: 0] += 1
                    state.lastSent[key] = .now
                    ready.append(batch)
                    return (ready, nil)
                }
                state.open[key] = batch
                return (ready, batch.id)
            }
            for batch in ready { launch(batch) }
            // Waiting for a shared call needs no consumer slot: give it to the next delivery.
            ConcurrencySlot.current?.releaseEarly()
            if let timed {
                let window = self.window
                Task {
                    // Not cancelled by anyone: the window always ends and the batch is always sent.
                    try? await Task.sleep(for: window)
                    self.flush(key, id: timed)
                }
            }
        }
        return try result.get()
    }

    /// Sends every open batch now (on shutdown, or in tests).
    public func flushAll() {
        let batches = state.withLock { state in
            let batches = Array(state.open.values)
            for key in state.open.keys { state.awaiting[key, default: 0] += 1 }
            state.open = [:]
            return batches
        }
        for batch in batches { launch(batch) }
    }

    /// The window of batch `id` ended: send it unless it was sent already (full); while an earlier batch of the
    /// key still waits for its slot, mark it due so it goes (with what it gathered meanwhile) as soon as that
    /// one is admitted; while the key's last call is less than ``pace`` ago, look again when it is not.
    func flush(_ key: Key, id: UInt64) {
        enum Next {
            case nothing
            case send(Batch)
            case later(Duration)
        }
        let next = state.withLock { state -> Next in
            guard var batch = state.open[key], batch.id == id else { return .nothing }
            if state.awaiting[key, default: 0] > 0 {
                batch.due = true
                state.open[key] = batch
                return .nothing
            }
            let now = ContinuousClock.now
            if let pace, let last = state.lastSent[key], now < last + pace {
                return .later(last + pace - now)
            }
            state.open[key] = nil
            state.awaiting[key, default: 0] += 1
            state.lastSent[key] = now
            return .send(batch)
        }
        switch next {
        case .nothing:
            break
        case .send(let batch):
            launch(batch)
        case .later(let wait):
            Task {
                // Not cancelled by anyone, like the window: the batch is always sent.
                try? await Task.sleep(for: wait)
                self.flush(key, id: id)
            }
        }
    }

    /// Forgets the send times that no longer delay anything, once there are many (one per account seen).
    func pruneLastSent(_ state: inout State) {
        guard state.lastSent.count > 1024 else { return }
        guard let pace else {
            state.lastSent = [:]
            return
        }
        let now = ContinuousClock.now
        state.lastSent = state.lastSent.filter { now < $0.value + pace }
    }

    /// A batch of `key` was admitted by the rate limiter (or failed before): a due batch of the key goes now.
    func admitted(_ key: Key) {
        let next = state.withLock { state -> Batch? in
            let waiting = state.awaiting[key, default: 1] - 1
            state.awaiting[key] = waiting > 0 ? waiting : nil
            guard let batch = state.open[key], batch.due else { return nil }
            state.open[key] = nil
            state.awaiting[key, default: 0] += 1
            state.lastSent[key] = .now
            return batch
        }
        if let next { launch(next) }
    }

    /// Runs a batch's call in its own task, registered as waiting until the rate limiter admitted it (the
    /// task is created under the lock, so its end cannot come before its registration).
    func launch(_ batch: Batch) {
        state.withLock { state in
            state.waiting[batch.id] = Task { await self.send(batch) }
        }
    }

    /// Graceful shutdown: the calls still waiting for their rate-limit slot (up to ``admissionWait``) give up,
    /// and their events are handed back for another consumer (the process would otherwise wait for slots a
    /// minute away, past any termination grace period); calls from now on are held back at once when their slot
    /// is not free (each event parked in a retry tier with the others' reserved slots in mind, then acked).
    /// Calls already admitted finish.
    public func stopWaiting() {
        let waiting = state.withLock { state in
            state.stopping = true
            return Array(state.waiting.values)
        }
        for task in waiting { task.cancel() }
    }

    /// Makes the one call of a batch and tells every submitter its outcome.
    func send(_ batch: Batch) async {
        let started = ContinuousClock.now
        let size = batch.entries.count
        let key = Key(accountID: batch.accountID, credential: batch.credential)
        let notice = AdmissionNotice {
            self.state.withLock { _ = $0.waiting.removeValue(forKey: batch.id) }
            self.admitted(key)
        }
        defer { notice.fire() }
        var client = batch.client
        if let gate = client.gate as? RateLimitGate {
            let maxWait = state.withLock { $0.stopping } ? Duration.zero : admissionWait
            client = client.gated(by: NotifyingGate(inner: gate.forSharedCall(maxWait: maxWait), notice: notice))
        } else {
            notice.fire()
        }
        let result: Result<Delivery, KlaviyoError>
        let operation: String
        if size == 1, let only = batch.entries.first {
            operation = "create_event"
            do {
                result = .success(
                    .single(status: try await client.createEvent(only.event, credential: batch.credential)))
            } catch {
                result = .failure(error)
            }
        } else {
            operation = "bulk_create_events"
            do {
                let status = try await client.bulkCreateEvents(
                    batch.entries.map(\.event), credential: batch.credential)
                result = .success(.batched(status: status, size: size))
            } catch {
                result = Self.eachSendsAlone(after: error) ? .success(.sendAlone(reason: error)) : .failure(error)
            }
        }
        let outcome: String
        switch result {
        case .success(.sendAlone): outcome = "sent_alone"
        case .success: outcome = "sent"
        case .failure: outcome = "failed"
        }
        Counter(label: "relay_event_batches_total", dimensions: [("call", operation), ("outcome", outcome)])
            .increment()
        Recorder(label: "relay_event_batch_size", aggregate: true).record(size)
        var metadata: Logger.Metadata = [
            LogKeys.accountID: "\(batch.accountID)", "batch_size": "\(size)", "klaviyo.operation": "\(operation)",
            "batch_outcome": "\(outcome)",
            "batch_wait_ms": "\((started - batch.opened).wholeMilliseconds)",
            "duration_ms": "\((ContinuousClock.now - started).wholeMilliseconds)",
        ]
        if case .failure(let error) = result { metadata[LogKeys.errorDetail] = "\(error)" }
        if case .success(.sendAlone(let error)) = result { metadata[LogKeys.errorDetail] = "\(error)" }
        logger.debug("event batch flushed", metadata: metadata)
        for entry in batch.entries { entry.continuation.resume(returning: result) }
    }

    /// Whether a failed bulk call should be repeated event by event with `create_event`: a permanent refusal
    /// one bad event can cause (400, 409, 413, 422…, or the relay's own size check). Failures every event
    /// shares (429, 5xx, transport, 401, 403, and the limiter holding the call back beyond ``admissionWait``)
    /// are thrown to every submitter instead, each of which takes its own retry path.
    static func eachSendsAlone(after error: KlaviyoError) -> Bool {
        switch error.code {
        case .rejected, .conflict, .invalidRequest: return true
        default: return false
        }
    }
}

/// Fires its action once: when a batch's call was admitted, or when it ended without being admitted.
final class AdmissionNotice: Sendable {
    let fired = Atomic(false)
    let action: @Sendable () -> Void

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = action
    }

    func fire() {
        if !fired.exchange(true, ordering: .acquiringAndReleasing) { action() }
    }
}

/// A gate that tells the batcher when its inner gate admitted the call (or refused it).
struct NotifyingGate: KlaviyoCallGate {
    let inner: RateLimitGate
    let notice: AdmissionNotice

    func admit(operationID: String, credential: KlaviyoCredential) async throws(KlaviyoError) {
        defer { notice.fire() }
        try await inner.admit(operationID: operationID, credential: credential)
    }

    func throttled(operationID: String, retryAfter: Duration) async {
        await inner.throttled(operationID: operationID, retryAfter: retryAfter)
    }
}
