import AMQP
import Klaviyo
import Relay
import Testing

/// `dlq stats` counts and `dlq replay --id`'s filter, without a broker.
@Suite("Dead-letter stats")
struct DeadLetterStatsTests {
    let now: Int64 = 1_800_000_000_000

    func summary(
        code: String, account: String?, type: String, minutesAgo: Int64?, id: String = "cmd"
    ) -> DeadLetterSummary {
        var headers: AMQPTable = [
            "x-relay-error-code": .string(code), "x-relay-error-detail": .string("d"), "x-relay-type": .string(type),
            "x-relay-command-id": .string(id), "x-original-routing-key": .string(type),
        ]
        if let account { headers["x-relay-account-id"] = .string(account) }
        if let minutesAgo {
            headers["x-relay-last-failed-at"] = .string(Timestamp.format(milliseconds: now - minutesAgo * 60_000))
        }
        // The body names the same command id as the relay's header (the relay copies it from the body); the relay
        // made it (sealed), so the headers name the account and type the body does not.
        let body = #"{"id":"\#(id)"}"#
        return DeadLetterSummary(
            delivery(
                body: body, routingKey: type, exchange: "klaviyo.commands",
                headers: sealedDeadLetter(headers, body: body)),
            seal: deadLetterSeal)
    }

    @Test func countsByCodeAccountTypeAndAge() {
        let stats = DeadLetterStats(
            [
                summary(code: "not_connected", account: "org_a", type: "profile.upsert", minutesAgo: 5),
                summary(code: "not_connected", account: "org_a", type: "event.track", minutesAgo: 90),
                summary(code: "retries_exhausted", account: "org_b", type: "event.track", minutesAgo: 3 * 24 * 60),
                summary(code: "schema_invalid", account: nil, type: "profile.upsert", minutesAgo: 8 * 24 * 60),
                summary(code: "schema_invalid", account: nil, type: "profile.upsert", minutesAgo: nil),
            ], nowMilliseconds: now)
        #expect(stats.total == 5)
        #expect(stats.byCode == ["not_connected": 2, "retries_exhausted": 1, "schema_invalid": 2])
        #expect(stats.byAccount == ["org_a": 2, "org_b": 1, "-": 2])
        #expect(stats.byType == ["profile.upsert": 3, "event.track": 2])
        #expect(stats.byAge == ["<1h": 1, "1h-24h": 1, "1d-7d": 1, ">=7d": 1, "unknown": 1])
        let ranked = DeadLetterStats.ranked(stats.byCode)
        #expect(ranked.map(\.key) == ["not_connected", "schema_invalid", "retries_exhausted"])
        #expect(stats.json["by_code"]?["schema_invalid"] == .int(2))
        #expect(stats.json["total"] == .int(5))
    }

    @Test func ageBucketBoundaries() {
        #expect(DeadLetterStats.ageBucket(.seconds(3599)) == "<1h")
        #expect(DeadLetterStats.ageBucket(.seconds(3600)) == "1h-24h")
        #expect(DeadLetterStats.ageBucket(.seconds(86_400)) == "1d-7d")
        #expect(DeadLetterStats.ageBucket(.seconds(7 * 86_400)) == ">=7d")
        #expect(DeadLetterStats.ageBucket(nil) == "unknown")
    }

    @Test func filterByIdMatchesCommandOrMessageIdOnly() {
        let one = summary(code: "not_connected", account: "org_a", type: "profile.upsert", minutesAgo: 1, id: "c-1")
        let two = summary(code: "not_connected", account: "org_a", type: "profile.upsert", minutesAgo: 1, id: "c-2")
        #expect(DeadLetterFilter(id: "c-1").matches(one, nowMilliseconds: now))
        #expect(!DeadLetterFilter(id: "c-1").matches(two, nowMilliseconds: now))
        #expect(!DeadLetterFilter(account: "org_b", id: "c-1").matches(one, nowMilliseconds: now))
    }
}
