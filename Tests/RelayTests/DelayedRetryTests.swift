import Klaviyo
import Relay
import Testing

@testable import AMQP

func delivery(
    body: String = #"{"id":"c1","type":"profile.upsert","account_id":"org_1"}"#, routingKey: String = "profile.upsert",
    exchange: String = "klaviyo.commands", headers: AMQPTable = [:], messageID: String? = "c1"
) -> AMQPDelivery {
    var properties = AMQPProperties(contentType: "application/json", headers: headers, persistent: true)
    properties.messageID = messageID
    properties.correlationID = "corr-1"
    properties.replyTo = "replies"
    return AMQPDelivery(
        body: Array(body.utf8), properties: properties, exchange: exchange, routingKey: routingKey, redelivered: false,
        deliveryTag: 1, consumerTag: "", queue: "klaviyo.profiles", generation: 1, channel: 1)
}

@Suite("Delayed retries through the TTL tiers")
struct DelayedRetryTests {
    let topology = RelayTopology()
    let seal = HeaderSeal(keyRing: .development)

    @Test(arguments: [
        (0, "1s"), (200, "1s"), (1000, "1s"), (1001, "5s"), (1200, "5s"), (5000, "5s"), (29_000, "30s"),
        (31_000, "2m"), (600_000, "10m"), (601_000, "1h"), (7_200_000, "1h"),
    ])
    func tierIsTheShortestAtLeastTheWantedDelay(milliseconds: Int, tier: String) {
        #expect(topology.retryTier(for: .milliseconds(milliseconds))?.name == tier)
    }

    @Test func tiersAreInjectableAndSorted() {
        let short = RelayTopology(
            prefix: "t", retryTiers: [.init("b", .milliseconds(900)), .init("a", .milliseconds(300))])
        #expect(short.retryTiers.map(\.name) == ["a", "b"])
        #expect(short.retryTier(for: .milliseconds(400))?.name == "b")
        let queues = short.amqpTopology.queues.filter { $0.name.hasPrefix("t.retry.") }
        #expect(queues.map(\.name) == ["t.retry.a", "t.retry.b"])
        #expect(queues.first?.arguments["x-message-ttl"] == .int(300))
        #expect(queues.first?.arguments["x-dead-letter-exchange"] == .string("t.commands"))
        #expect(RelayTopology(prefix: "x", retryTiers: []).retryTier(for: .seconds(1)) == nil)
    }

    func error(_ code: KlaviyoError.Code, status: Int?, retryAfter: Duration? = nil) -> KlaviyoError {
        KlaviyoError(code: code, status: status, operationID: "op", message: "m", retryAfter: retryAfter)
    }

    let policy = RetryPolicy(
        maxAttempts: 4, baseDelay: .milliseconds(200), maxDelay: .seconds(10), maxRetryAge: .seconds(3600))
    let now: Int64 = 1_800_000_000_000

    @Test func unavailableGoesToTheShortTierEarlyAndLongerLater() {
        let unavailable = error(.serverError, status: 503)
        let first = policy.schedule(
            after: unavailable, attempt: 1, isIdempotent: true, firstFailedAtMilliseconds: now, nowMilliseconds: now,
            topology: topology, random: { 0.999 })
        #expect(first == .delay(tier: .init("1s", .seconds(1)), wanted: .milliseconds(200) * 0.999))
        guard
            case .delay(let tier, _) = policy.schedule(
                after: unavailable, attempt: 3, isIdempotent: true, firstFailedAtMilliseconds: now,
                nowMilliseconds: now,
                topology: topology, random: { 0.999 })
        else {
            Issue.record("expected a delay")
            return
        }
        #expect(tier.name == "1s", "800 ms of backoff still fits the 1 s tier")
    }

    @Test func throttledWaitsAtLeastRetryAfter() {
        let throttled = error(.throttled, status: 429, retryAfter: .seconds(20))
        for random in [0.0, 0.5, 0.999] {
            guard
                case .delay(let tier, let wanted) = policy.schedule(
                    after: throttled, attempt: 1, isIdempotent: true, firstFailedAtMilliseconds: now,
                    nowMilliseconds: now,
                    topology: topology, random: { random })
            else {
                Issue.record("expected a delay")
                return
            }
            #expect(wanted >= .seconds(20))
            #expect(tier.delay >= wanted)
            #expect(tier.name == "30s")
        }
    }

    @Test func attemptsAndAgeAreBounded() {
        let unavailable = error(.serverError, status: 503)
        guard
            case .giveUpExhausted(let reason) = policy.schedule(
                after: unavailable, attempt: 4, isIdempotent: true, firstFailedAtMilliseconds: now,
                nowMilliseconds: now,
                topology: topology)
        else {
            Issue.record("expected exhausted at the maximum attempts")
            return
        }
        #expect(reason.contains("4 attempts"))
        guard
            case .giveUpExhausted(let aged) = policy.schedule(
                after: unavailable, attempt: 2, isIdempotent: true, firstFailedAtMilliseconds: now - 3_600_000,
                nowMilliseconds: now, topology: topology)
        else {
            Issue.record("expected exhausted beyond the maximum age")
            return
        }
        #expect(aged.contains("maximum age"))
        if case .delay = policy.schedule(
            after: unavailable, attempt: 2, isIdempotent: true, firstFailedAtMilliseconds: now - 3_599_000,
            nowMilliseconds: now, topology: topology)
        {
        } else {
            Issue.record("just under the maximum age still retries")
        }
        #expect(
            policy.schedule(
                after: error(.rejected, status: 400), attempt: 1, isIdempotent: true, firstFailedAtMilliseconds: now,
                nowMilliseconds: now, topology: topology) == .giveUpPermanent)
        #expect(
            policy.schedule(
                after: error(.serverError, status: 500), attempt: 1, isIdempotent: false,
                firstFailedAtMilliseconds: now, nowMilliseconds: now, topology: topology) == .giveUpPermanent)
    }

    @Test func retryMessageCarriesTheBookkeepingAndTheOriginalBytes() {
        let original = delivery(headers: ["traceparent": .string("00-abc-01"), "x-delivery-count": .int(2)])
        let message = DelayedRetry.message(
            for: original, topology: topology, tier: .init("5s", .seconds(5)), routingKey: "profile.upsert",
            attempts: 2, firstFailedAt: "2026-11-29T12:00:00.000Z", lastError: String(repeating: "e", count: 1000),
            seal: seal)
        #expect(message.exchange == "klaviyo.retry")
        #expect(message.routingKey == "5s")
        #expect(message.body == original.body)
        let headers = message.properties.headers
        #expect(headers["CC"] == .array([.string("profile.upsert")]))
        #expect(headers["x-relay-attempts"] == .int(2))
        #expect(headers["x-relay-first-failed-at"] == .string("2026-11-29T12:00:00.000Z"))
        #expect(headers["x-relay-last-error"]?.stringValue?.count == DelayedRetry.maxLastErrorLength)
        #expect(headers["x-original-routing-key"] == .string("profile.upsert"))
        #expect(headers["x-original-exchange"] == .string("klaviyo.commands"))
        #expect(headers["traceparent"] == .string("00-abc-01"))
        #expect(headers["x-delivery-count"] == nil)
        #expect(message.properties.messageID == "c1")
        #expect(message.properties.replyTo == "replies")
        #expect(message.properties.persistent)

        // The next delivery arrives from the tier with the tier's name as routing key: the state and the
        // original routing key come from the headers.
        let back = delivery(routingKey: "5s", headers: headers)
        #expect(DelayedRetry.originalRoutingKey(of: back, seal: seal) == "profile.upsert")
        #expect(
            DelayedRetry.State(delivery: back, seal: seal)
                == .init(attempts: 2, firstFailedAt: "2026-11-29T12:00:00.000Z"))
        let again = DelayedRetry.message(
            for: back, topology: topology, tier: .init("1s", .seconds(1)), routingKey: "profile.upsert", attempts: 3,
            firstFailedAt: "2026-11-29T12:00:00.000Z", lastError: "503", seal: seal)
        #expect(again.properties.headers["CC"] == .array([.string("profile.upsert")]))
        #expect(again.properties.headers["x-original-exchange"] == .string("klaviyo.commands"))
    }

    @Test func forgedBookkeepingOnAFreshCommandIsIgnored() {
        // What a publisher can put on a fresh command: no seal, or a seal copied from another message.
        let forged: AMQPTable = [
            "x-relay-attempts": .int(99), "x-relay-first-failed-at": .string("2000-01-01T00:00:00Z"),
            "x-original-routing-key": .string("campaign.send"), "x-original-exchange": .string("elsewhere"),
        ]
        let fresh = delivery(headers: forged)
        #expect(DelayedRetry.State(delivery: fresh, seal: seal) == .init(attempts: 0, firstFailedAt: nil))
        #expect(DelayedRetry.originalRoutingKey(of: fresh, seal: seal) == "profile.upsert")
        // A genuine seal for another body does not transfer.
        let parked = DelayedRetry.message(
            for: delivery(), topology: topology, tier: .init("5s", .seconds(5)), routingKey: "profile.upsert",
            attempts: 4, firstFailedAt: "2026-11-29T12:00:00.000Z", lastError: "503", seal: seal)
        var copied = parked.properties.headers
        copied["x-relay-attempts"] = .int(99)
        #expect(DelayedRetry.State(delivery: delivery(headers: copied), seal: seal).attempts == 0)
        let otherBody = delivery(
            body: #"{"id":"c2","type":"profile.upsert","account_id":"org_1"}"#, headers: parked.properties.headers)
        #expect(DelayedRetry.State(delivery: otherBody, seal: seal).attempts == 0)
        // Sealed by another relay's key: not trusted either.
        let strangerKey = try! EncryptionKeyRing(specification: EncryptionKeyRing.generateSpecification(keyID: "x"))
        #expect(DelayedRetry.State(delivery: delivery(headers: parked.properties.headers), seal: seal).attempts == 4)
        #expect(
            DelayedRetry.State(
                delivery: delivery(headers: parked.properties.headers), seal: HeaderSeal(keyRing: strangerKey)
            ).attempts == 0)
        // A retry message built from the forged delivery carries no forged header and routes by the type.
        let retry = DelayedRetry.message(
            for: fresh, topology: topology, tier: .init("1s", .seconds(1)), routingKey: "profile.upsert", attempts: 1,
            firstFailedAt: "2026-11-29T12:00:00.000Z", lastError: "503", seal: seal)
        #expect(retry.properties.headers["CC"] == .array([.string("profile.upsert")]))
        #expect(retry.properties.headers["x-original-exchange"] == .string("klaviyo.commands"))
        #expect(retry.properties.headers["x-relay-attempts"] == .int(1))
        // Dead letters of a fresh command do not carry what the publisher forged.
        let dead = DeadLetter.message(
            for: fresh, topology: topology, code: .schemaInvalid, detail: "x", attempts: 1, firstFailedAt: nil,
            commandID: "c1", accountID: "org_1", type: "profile.upsert", seal: seal)
        #expect(dead.properties.headers["x-relay-first-failed-at"] != .string("2000-01-01T00:00:00Z"))
        #expect(dead.properties.headers["x-original-routing-key"] == .string("profile.upsert"))
        #expect(dead.routingKey == "profile.upsert")
    }

    /// A copy the relay publishes must not expire where nothing dead-letters it, and must not name the publisher's
    /// broker user (the broker closes the relay's publish channel for a `user_id` that is not its own).
    @Test func copiesDropThePublishersExpirationAndUserID() {
        var fresh = delivery()
        fresh.properties.expiration = "5000"
        fresh.properties.userID = "heropixel"
        fresh.properties.priority = 4
        let copies = [
            DelayedRetry.message(
                for: fresh, topology: topology, tier: .init("1s", .seconds(1)), routingKey: "profile.upsert",
                attempts: 1, firstFailedAt: "2026-11-29T12:00:00.000Z", lastError: "503", seal: seal),
            DelayedRetry.pollMessage(
                for: fresh, topology: topology, tier: .init("1s", .seconds(1)), routingKey: "profile.upsert",
                polls: 1, seal: seal),
            DeadLetter.message(
                for: fresh, topology: topology, code: .notJSON, detail: "x", attempts: 1, firstFailedAt: nil,
                commandID: nil, accountID: nil, type: nil, seal: seal),
            DeadLetterQueue.replayMessage(for: fresh, topology: topology),
        ]
        for copy in copies {
            #expect(copy.properties.expiration == nil)
            #expect(copy.properties.userID == nil)
            // Everything else the publisher set travels on.
            #expect(copy.properties.messageID == "c1" && copy.properties.correlationID == "corr-1")
            #expect(copy.properties.replyTo == "replies" && copy.properties.priority == 4)
        }
    }

    @Test func malformedBookkeepingCountsAsAbsent() {
        #expect(DelayedRetry.State(headers: [:]) == .init(attempts: 0, firstFailedAt: nil))
        #expect(
            DelayedRetry.State(headers: [
                "x-relay-attempts": .string("7"), "x-relay-first-failed-at": .string("yesterday"),
            ])
                == .init(attempts: 0, firstFailedAt: nil))
        #expect(DelayedRetry.State(headers: ["x-relay-attempts": .int(-3)]).attempts == 0)
    }

    @Test func maxRetryAgeIsConfigurable() throws {
        #expect(try RelayConfiguration(environment: [:], development: true).maxRetryAge == .seconds(24 * 3600))
        #expect(
            try RelayConfiguration(environment: ["RELAY_MAX_RETRY_AGE": "2h"], development: true).maxRetryAge
                == .seconds(7200))
        let refused = #expect(throws: RelayError.self) {
            try RelayConfiguration(environment: ["RELAY_MAX_RETRY_AGE": "soon"], development: true)
        }
        #expect(refused?.code == .invalidConfiguration)
    }

    @Test func timestampsRoundTrip() {
        #expect(Timestamp.parseMilliseconds("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.parseMilliseconds("2026-11-29T12:00:00.123Z") == 1_795_953_600_123)
        let now = Timestamp.nowMilliseconds()
        #expect(Timestamp.parseMilliseconds(Timestamp.format(milliseconds: now)) == now)
        #expect(Timestamp.parseMilliseconds("2026-11-29 12:00:00Z") == nil)
        #expect(Timestamp.parseMilliseconds("2026-13-29T12:00:00Z") == nil)
        #expect(Timestamp.parseMilliseconds("") == nil)
    }
}

@Suite("Dead-letter queue tooling")
struct DeadLetterQueueTests {
    let now: Int64 = 1_800_000_000_000

    func ours(code: String, account: String, type: String, minutesAgo: Int64) -> DeadLetterSummary {
        let body = #"{"id":"cmd-\#(account)","account_id":"\#(account)","type":"\#(type)"}"#
        return DeadLetterSummary(
            delivery(
                body: body, routingKey: type, exchange: "klaviyo.commands",
                headers: sealedDeadLetter(
                    [
                        "x-relay-error-code": .string(code), "x-relay-error-detail": .string("d"),
                        "x-relay-attempts": .int(3), "x-relay-account-id": .string(account),
                        "x-relay-type": .string(type),
                        "x-relay-command-id": .string("cmd-\(account)"),
                        "x-relay-last-failed-at": .string(Timestamp.format(milliseconds: now - minutesAgo * 60_000)),
                        "x-original-routing-key": .string(type),
                    ], body: body)), seal: deadLetterSeal)
    }

    @Test func filtersCombine() throws {
        let a = ours(code: "not_connected", account: "org_a", type: "profile.upsert", minutesAgo: 30)
        let b = ours(code: "retries_exhausted", account: "org_b", type: "event.track", minutesAgo: 2)
        #expect(a.commandID == "cmd-org_a" && a.attempts == 3 && !a.brokerMade)
        #expect(DeadLetterFilter().matches(a, nowMilliseconds: now))
        #expect(DeadLetterFilter(account: "org_a").matches(a, nowMilliseconds: now))
        #expect(!DeadLetterFilter(account: "org_a").matches(b, nowMilliseconds: now))
        #expect(DeadLetterFilter(type: "profile.*").matches(a, nowMilliseconds: now))
        #expect(!DeadLetterFilter(type: "profile.*").matches(b, nowMilliseconds: now))
        #expect(DeadLetterFilter(type: "event.track").matches(b, nowMilliseconds: now))
        #expect(DeadLetterFilter(code: "retries_exhausted").matches(b, nowMilliseconds: now))
        #expect(!DeadLetterFilter(code: "retries_exhausted").matches(a, nowMilliseconds: now))
        let tenMinutes = try #require(RelayConfiguration.parseDuration("10m"))
        #expect(tenMinutes == .seconds(600))
        #expect(DeadLetterFilter(olderThan: tenMinutes).matches(a, nowMilliseconds: now))
        #expect(!DeadLetterFilter(olderThan: tenMinutes).matches(b, nowMilliseconds: now))
        #expect(!DeadLetterFilter(account: "org_a", code: "retries_exhausted").matches(a, nowMilliseconds: now))
        #expect(a.age(nowMilliseconds: now) == .seconds(1800))
    }

    @Test func brokerMadeDeliveryLimitIsReportedAsSuch() {
        let deaths: AMQPFieldValue = .array([
            .table([
                "reason": .string("delivery_limit"), "queue": .string("klaviyo.profiles"), "count": .int(1),
                "time": .timestamp(UInt64(now / 1000 - 120)), "routing-keys": .array([.string("profile.upsert")]),
            ]),
            .table(["reason": .string("expired"), "queue": .string("klaviyo.retry.1s"), "count": .int(2)]),
        ])
        let summary = DeadLetterSummary(
            delivery(
                body: #"{"id":"c9","type":"profile.upsert","account_id":"org_9"}"#,
                headers: ["x-death": deaths, "x-first-death-reason": .string("expired")]), seal: deadLetterSeal)
        #expect(summary.brokerMade)
        #expect(summary.code == "delivery_limit")
        #expect(summary.commandID == "c9" && summary.accountID == "org_9" && summary.type == "profile.upsert")
        #expect(summary.detail.contains("klaviyo.profiles"))
        #expect(summary.age(nowMilliseconds: now) == .seconds(120))
        #expect(DeadLetterFilter(code: "delivery_limit").matches(summary, nowMilliseconds: now))

        let firstDeathOnly = DeadLetterSummary(
            delivery(headers: ["x-first-death-reason": .string("delivery_limit")]), seal: deadLetterSeal)
        #expect(firstDeathOnly.code == "delivery_limit")
    }

    @Test func replayRestoresTheOriginalMessage() {
        let dead = delivery(
            routingKey: "1s", exchange: "klaviyo.dead",
            headers: [
                "x-relay-error-code": .string("retries_exhausted"), "x-relay-attempts": .int(5),
                "x-relay-last-error": .string("503"), "x-original-routing-key": .string("profile.upsert"),
                "x-original-exchange": .string("klaviyo.commands"), "x-death": .array([]),
                "x-first-death-reason": .string("expired"), "CC": .array([.string("profile.upsert")]),
                "x-delivery-count": .int(3), "traceparent": .string("00-abc-01"),
                DeadLetterQueue.replayHeader: .string("an-earlier-replay"),
            ])
        let message = DeadLetterQueue.replayMessage(for: dead, topology: RelayTopology())
        #expect(message.exchange == "klaviyo.commands")
        #expect(message.routingKey == "profile.upsert")
        #expect(message.body == dead.body)
        #expect(message.mandatory)
        // The original headers, and a new replay token (each replay is a flow of its own).
        let token = message.properties.headers[DeadLetterQueue.replayHeader]?.stringValue ?? ""
        #expect(token.count >= 16 && token != "an-earlier-replay")
        #expect(
            DeadLetterQueue.replayMessage(for: dead, topology: RelayTopology()).properties.headers[
                DeadLetterQueue.replayHeader] != .string(token))
        var others = message.properties.headers
        others[DeadLetterQueue.replayHeader] = nil
        #expect(others == ["traceparent": .string("00-abc-01")])
        #expect(message.properties.messageID == "c1")
        #expect(message.properties.correlationID == "corr-1")
        #expect(message.properties.replyTo == "replies")
        #expect(message.properties.contentType == "application/json")
    }
}
