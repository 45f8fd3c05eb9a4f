public import AMQP
public import Klaviyo

/// What ops see of one dead letter: the reason headers we write (docs/contracts.md, "Dead letters"), or, for dead
/// letters the broker made itself (the work queues' `x-delivery-limit`), what `x-death` and the body say.
///
/// Only a dead letter whose seal verifies (``HeaderSeal/verifiesDeadLetter(_:body:)``) is known to be the relay's:
/// the broker keeps a command's headers as published, so a publisher can write any `x-relay-*` header, including
/// `x-relay-error-code` and another account's `x-relay-account-id`, on a command the broker then dead-letters.
public struct DeadLetterSummary: Sendable {
    /// AMQP `message_id` (the command id for well-behaved publishers).
    public var messageID: String?
    /// Command id (the body's `id`, or `x-relay-command-id` when the body names none and the seal verifies).
    public var commandID: String?
    /// Account (the body's `account_id`, or `x-relay-account-id` when the body names none and the seal verifies).
    public var accountID: String?
    /// Command type (the body's `type`, or `x-relay-type` when the body names none and the seal verifies).
    public var type: String?
    /// `x-relay-error-code`, or derived from `x-death` (`delivery_limit`, or the broker's reason). An unsealed
    /// `x-relay-error-code` (an older relay's dead letter, or a publisher's) is shown for triage, unless `x-death`
    /// says the broker dead-lettered the message at its delivery limit.
    public var code: String
    /// `x-relay-error-detail`, or a description of the broker's dead-lettering.
    public var detail: String
    /// `x-relay-attempts` (Klaviyo attempts), or the broker's delivery count for a `delivery_limit`.
    public var attempts: Int?
    /// When it was dead-lettered, epoch milliseconds (`x-relay-last-failed-at` or the `x-death` time).
    public var deadLetteredAtMilliseconds: Int64?
    /// The routing key to replay with.
    public var originalRoutingKey: String
    /// Whether the broker made this dead letter (no `x-relay-error-code`, or an unsealed one on a message the broker
    /// dead-lettered at its delivery limit).
    public var brokerMade: Bool
    /// Whether the relay's seal verifies: the relay made this dead letter, and its `x-relay-*` headers are the
    /// relay's. Dead letters of a relay older than the seal have none.
    public var sealed: Bool

    /// Reads a delivery from the dead-letter queue; `seal` tells the relay's dead letters from the others.
    public init(_ delivery: AMQPDelivery, seal: HeaderSeal) {
        let headers = delivery.properties.headers
        func header(_ name: String) -> String? { headers[name]?.stringValue }
        let body = try? JSONValue.parse(delivery.body)
        func field(_ name: String) -> String? {
            guard let value = body?[name]?.stringValue, !value.isEmpty else { return nil }
            return String(value.prefix(200))
        }
        messageID = delivery.properties.messageID
        // The body first: it is what the relay acted on and what a replay runs. The `x-relay-*` copies speak only
        // for a body that names nothing, and only on a dead letter the relay sealed: a broker-made one (delivery
        // limit) carries the publisher's headers as published, `x-relay-error-code` included, so a command of
        // account B saying `x-relay-account-id: A` would otherwise be listed, exported, replayed and purged as
        // account A's. An unsealed code (an older relay's dead letter) is still shown, never attributed.
        let verified = seal.verifiesDeadLetter(headers, body: delivery.body)
        sealed = verified
        let death = DeadLetterQueue.brokerDeath(headers)
        let claimedCode = header(DeadLetter.Header.errorCode).flatMap { $0.isEmpty ? nil : $0 }
        let relayCode = verified || death.reason != "delivery_limit" ? claimedCode : nil
        func relayHeader(_ name: String) -> String? { verified ? header(name) : nil }
        commandID = field("id") ?? relayHeader(DeadLetter.Header.commandID)
        accountID = field("account_id") ?? relayHeader(DeadLetter.Header.accountID)
        type = field("type") ?? relayHeader(DeadLetter.Header.type)
        originalRoutingKey = DeadLetterQueue.originalRoutingKey(of: delivery)
        if let code = relayCode {
            brokerMade = false
            self.code = code
            detail = header(DeadLetter.Header.errorDetail) ?? ""
            attempts = Self.count(headers[DeadLetter.Header.attempts])
            deadLetteredAtMilliseconds = header(DeadLetter.Header.lastFailedAt).flatMap(Timestamp.parseMilliseconds)
        } else {
            brokerMade = true
            let reason = death.reason.flatMap { $0.isEmpty ? nil : $0 }
            code = reason == "delivery_limit" ? DeadLetterCode.deliveryLimit.rawValue : (reason ?? "unknown")
            let queue = death.queue.map { " from \($0)" } ?? ""
            detail =
                death.reason == "delivery_limit"
                ? "the broker dead-lettered it\(queue) after its delivery limit (crash loop or repeated hand-backs)"
                : "the broker dead-lettered it\(queue) (reason \(death.reason ?? "unknown"))"
            attempts = Self.count(headers[DeadLetter.Header.attempts]) ?? death.count
            deadLetteredAtMilliseconds = death.time.flatMap { Clamp.epochMilliseconds(fromEpochSeconds: $0) }
        }
    }

    /// A count header (`x-relay-attempts`, an `x-death` `count`) as ops see it: nil unless a non-negative
    /// integer (a negative or non-integer value from a hand-made message is not shown as a count).
    static func count(_ value: AMQPFieldValue?) -> Int? {
        guard let number = value?.intValue, number >= 0 else { return nil }
        return Int(clamping: number)
    }

    /// How long ago it was dead-lettered: never negative (a time in the future counts as now) and never
    /// overflowing, whatever the headers said.
    public func age(nowMilliseconds: Int64) -> Duration? {
        deadLetteredAtMilliseconds.map { .milliseconds(max(0, Clamp.difference(nowMilliseconds, $0))) }
    }

    /// One NDJSON line's worth (`dlq list --json`).
    public func json(nowMilliseconds: Int64) -> JSONValue {
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        return [
            "command_id": text(commandID), "message_id": text(messageID), "account_id": text(accountID),
            "type": text(type), "code": .string(code), "detail": .string(detail),
            "attempts": attempts.map { JSONValue.int(Int64($0)) } ?? .null,
            "dead_lettered_at": deadLetteredAtMilliseconds.map { JSONValue.string(Timestamp.format(milliseconds: $0)) }
                ?? .null,
            "age_seconds": age(nowMilliseconds: nowMilliseconds).map { JSONValue.int($0.components.seconds) } ?? .null,
            "routing_key": .string(originalRoutingKey), "broker_made": .bool(brokerMade), "sealed": .bool(sealed),
        ]
    }
}

/// Which dead letters an operation applies to. Every set criterion must hold.
public struct DeadLetterFilter: Sendable {
    /// Exact account id.
    public var account: String?
    /// Exact command type, or a prefix ending in `.*` / `*` (`profile.*`).
    public var type: String?
    /// Exact error code.
    public var code: String?
    /// Only dead letters at least this old (unknown age never matches).
    public var olderThan: Duration?
    /// At most this many.
    public var limit: Int?
    /// Exact command id; the AMQP message id only for a dead letter that names no command (its body has no id and
    /// no relay seal speaks for it). A message id is whatever the publisher set: a command with its own id in the
    /// body and another command's id as its message id must not be listed, replayed or purged as that other one.
    public var id: String?

    /// Creates a filter.
    public init(
        account: String? = nil, type: String? = nil, code: String? = nil, olderThan: Duration? = nil, limit: Int? = nil,
        id: String? = nil
    ) {
        self.id = id
        self.account = account
        self.type = type
        self.code = code
        self.olderThan = olderThan
        self.limit = limit
    }

    /// Whether a dead letter matches (the limit is applied by the caller).
    public func matches(_ summary: DeadLetterSummary, nowMilliseconds: Int64) -> Bool {
        if let id, (summary.commandID ?? summary.messageID) != id { return false }
        if let account, summary.accountID != account { return false }
        if let code, summary.code != code { return false }
        if let type {
            let actual = summary.type ?? summary.originalRoutingKey
            if type.hasSuffix("*") {
                guard actual.hasPrefix(String(type.dropLast())) else { return false }
            } else if actual != type {
                return false
            }
        }
        if let olderThan {
            guard let age = summary.age(nowMilliseconds: nowMilliseconds), age >= olderThan else { return false }
        }
        return true
    }
}

/// Reads and settles the dead-letter queue without losing anything.
///
/// Messages are fetched one by one with `basic.get` and manual acks and held unacked while the operation
/// runs, so the broker never hands the same message out twice in one run. A dead letter is acked (removed)
/// only after what replaces it is confirmed by the broker (replay) or after the operator confirmed (purge).
/// Everything else is handed back with `basic.nack(requeue: true)` at the end; if the run dies half-way
/// (Ctrl-C, broker gone), closing the connection hands back everything still held. Requeueing puts messages
/// back in a different order and raises their delivery count; the dead queue has no delivery limit, so that
/// is harmless.
public struct DeadLetterQueue: Sendable {
    /// One dead letter taken from the queue and held (unacked).
    public struct Held: Sendable {
        /// The delivery, to ack or hand back.
        public var delivery: AMQPDelivery
        /// What it says.
        public var summary: DeadLetterSummary

        /// Pairs a delivery with its summary.
        public init(delivery: AMQPDelivery, summary: DeadLetterSummary) {
            self.delivery = delivery
            self.summary = summary
        }
    }

    /// The result of a scan: the selected dead letters, and the others taken while looking (held too).
    public struct Selection: Sendable {
        /// Dead letters that matched the filter (at most `limit`).
        public var selected: [Held]
        /// Dead letters that did not match; hand them back with ``DeadLetterQueue/release(_:)``.
        public var others: [AMQPDelivery]
    }

    let amqp: AMQPClient
    let topology: RelayTopology
    let seal: HeaderSeal

    /// Creates the tool for a topology; `seal` (the relay's key ring) tells the relay's dead letters from the
    /// broker's and the forged (``DeadLetterSummary/sealed``).
    public init(amqp: AMQPClient, topology: RelayTopology, seal: HeaderSeal) {
        self.amqp = amqp
        self.topology = topology
        self.seal = seal
    }

    /// Takes the dead letters that were in the queue when it started (its depth then), until `filter.limit`
    /// matched: those arriving during the run are left for the next one, so a tenant flooding the dead queue faster
    /// than a run reads cannot keep it reading (and holding messages) for ever.
    ///
    /// Every message taken stays held (unacked) until the caller settles it, but only the selected ones keep their
    /// payload, and only with `keepBodies`: the others (and, without `keepBodies`, the selected ones too, once
    /// `onMatch` has seen them whole) keep just what settling them needs, so a scan of a large dead queue holds a few
    /// hundred bytes per message, not every body (the broker keeps the messages). `progress` hears how many messages
    /// were taken so far, after each one (long runs report it).
    public func scan(
        _ filter: DeadLetterFilter, nowMilliseconds: Int64 = Timestamp.nowMilliseconds(), keepBodies: Bool = true,
        progress: (Int) -> Void = { _ in }, onMatch: (Held) async throws -> Void = { _ in }
    ) async throws -> Selection {
        var selection = Selection(selected: [], others: [])
        let depth = Int(try await amqp.messageCount(queue: topology.deadQueue).messages)
        do {
            while selection.selected.count + selection.others.count < depth,
                filter.limit.map({ selection.selected.count < $0 }) ?? true
            {
                guard let delivery = try await amqp.get(queue: topology.deadQueue) else { break }
                progress(selection.selected.count + selection.others.count + 1)
                let summary = DeadLetterSummary(delivery, seal: seal)
                if filter.matches(summary, nowMilliseconds: nowMilliseconds) {
                    let held = Held(delivery: delivery, summary: summary)
                    selection.selected.append(
                        keepBodies ? held : Held(delivery: Self.settleOnly(delivery), summary: summary))
                    try await onMatch(held)
                } else {
                    selection.others.append(Self.settleOnly(delivery))
                }
            }
        } catch {
            await release(selection.others + selection.selected.map(\.delivery))
            throw error
        }
        return selection
    }

    /// A delivery without its payload and properties: what acking or handing it back needs.
    static func settleOnly(_ delivery: AMQPDelivery) -> AMQPDelivery {
        var kept = delivery
        kept.body = []
        kept.properties = AMQPProperties()
        return kept
    }

    /// Finds the dead letters with this command id or AMQP message id (several when another account reused the
    /// id: its `id_conflict` dead letter names the same command id); everything taken is handed back.
    public func find(_ id: String) async throws -> [Held] {
        let selection = try await scan(DeadLetterFilter(id: id))
        await release(selection.others + selection.selected.map(\.delivery))
        return selection.selected
    }

    /// Hands deliveries back to the queue (`basic.nack`, requeue). A delivery whose channel is gone was
    /// already handed back by the broker.
    public func release(_ deliveries: [AMQPDelivery]) async {
        for delivery in deliveries { try? await amqp.nack(delivery, requeue: true) }
    }

    /// Removes a dead letter for good.
    public func remove(_ delivery: AMQPDelivery) async throws {
        try await amqp.ack(delivery)
    }

    /// Republishes a dead letter's original body, byte for byte, to the commands exchange with its original
    /// routing key and properties (minus the dead-letter headers, its seal among them, and the broker's), waits for
    /// the broker's confirm and only then removes the dead letter. Mandatory: a routing key no queue takes fails
    /// (unroutable) and the dead letter stays.
    public func replay(_ held: Held) async throws {
        try await amqp.publish(Self.replayMessage(for: held.delivery, topology: topology))
        try await amqp.ack(held.delivery)
    }

    /// The message a replay publishes.
    public static func replayMessage(for delivery: AMQPDelivery, topology: RelayTopology) -> AMQPMessage {
        var properties = delivery.properties.republished
        properties.headers = replayHeaders(properties.headers)
        properties.headers[replayHeader] = .string(PKCE.randomToken(bytes: 12))
        return AMQPMessage(
            exchange: topology.commandsExchange, routingKey: originalRoutingKey(of: delivery), body: delivery.body,
            properties: properties, mandatory: true)
    }

    /// Names the flow a replay starts (a random token; copies of the replay carry it, as they carry every
    /// publisher header): a copy whose flow is not the one that was dead-lettered is not a copy of the dead
    /// letter (``IdempotencyStore/Lookup/deadLettered(code:flow:)``). Not sealed, and needs not be: a publisher
    /// that sets it on its own command gains nothing a fresh publish does not give it.
    public static let replayHeader = "x-replay-id"

    /// The flow a delivery belongs to: its replay's token, or "" for the publisher's own.
    public static func flow(of delivery: AMQPDelivery) -> String {
        delivery.properties.headers[replayHeader]?.stringValue ?? ""
    }

    /// The original headers: without `x-relay-*` (the seal `x-relay-seal` too: a replay is a fresh command, and the
    /// consumers would not trust a dead letter's seal anyway), `x-original-*`, the broker's `x-death` family and
    /// `CC`/`BCC`.
    public static func replayHeaders(_ headers: AMQPTable) -> AMQPTable {
        headers.filter { name, _ in
            !(name.hasPrefix("x-relay-") || name.hasPrefix("x-original-") || name.hasPrefix("x-first-death-")
                || name.hasPrefix("x-last-death-") || name == "x-death" || name == "x-delivery-count"
                || name == replayHeader
                || name == DelayedRetry.Header.cc || name == "BCC")
        }
    }

    /// The routing key the command was published with: `x-original-routing-key`, else (a broker-made dead
    /// letter of a command never retried) the routing key it arrived with. A header longer than an AMQP routing key
    /// may be (255 bytes) was not written by the relay (it copies routing keys the broker delivered) but by a
    /// publisher on a command the broker dead-lettered as published; it is ignored, since publishing with it fails
    /// as a lost connection and stopped `dlq replay` for every dead letter after it.
    public static func originalRoutingKey(of delivery: AMQPDelivery) -> String {
        guard let header = delivery.properties.headers[DeadLetter.Header.originalRoutingKey]?.stringValue,
            header.utf8.count <= 255
        else { return delivery.routingKey }
        return header
    }

    /// The broker's dead-lettering as `x-death` records it: a `delivery_limit` entry wins (a command that was
    /// retried through the tiers also has `expired` entries), then the most recent entry. The time is as sent
    /// (epoch seconds; a negative integer is no time); ``Clamp/epochMilliseconds(fromEpochSeconds:)-(UInt64)``
    /// decides whether it is plausible.
    static func brokerDeath(_ headers: AMQPTable) -> (reason: String?, queue: String?, count: Int?, time: UInt64?) {
        var entries: [AMQPTable] = []
        if case .array(let deaths)? = headers["x-death"] {
            for case .table(let entry) in deaths { entries.append(entry) }
        }
        let chosen = entries.first { $0["reason"]?.stringValue == "delivery_limit" } ?? entries.first
        if let chosen {
            var time: UInt64?
            switch chosen["time"] {
            case .timestamp(let seconds)?: time = seconds
            case .int(let seconds)? where seconds >= 0: time = UInt64(seconds)
            default: time = nil
            }
            return (
                chosen["reason"]?.stringValue, chosen["queue"]?.stringValue, DeadLetterSummary.count(chosen["count"]),
                time
            )
        }
        let reason = headers["x-last-death-reason"]?.stringValue ?? headers["x-first-death-reason"]?.stringValue
        let queue = headers["x-last-death-queue"]?.stringValue ?? headers["x-first-death-queue"]?.stringValue
        return (reason, queue, nil, nil)
    }
}
