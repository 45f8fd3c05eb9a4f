import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

@testable import AMQP

/// A dead letter as `basic.get` would hand it to the `dlq` tools.
func deadDelivery(
    body: [UInt8], routingKey: String, headers: AMQPTable, messageID: String?, timestamp: UInt64?
) -> AMQPDelivery {
    var properties = AMQPProperties(contentType: "application/json", headers: headers, persistent: true)
    properties.messageID = messageID
    properties.timestamp = timestamp
    return AMQPDelivery(
        body: body, properties: properties, exchange: "klaviyo.dead", routingKey: routingKey, redelivered: false,
        deliveryTag: 1, consumerTag: "", queue: "klaviyo.dead", generation: 1, channel: 1)
}

/// Feeds the `dlq` tools (summary, filters, `--json`, `show`, `export`, replay) random dead letters: x-death
/// arrays with `UInt64.max` or negative times and counts, wrong types, missing fields, random bodies. Never a
/// crash, and what they report stays sane (age ≥ 0, output that is valid JSON, replays without relay headers).
@Suite("Dead letters from anywhere (fuzz)")
struct DeadLetterFuzzTests {
    static let cases = 3000
    let now: Int64 = 1_796_040_000_000

    static let integers: [Int64] = [
        .min, .min + 1, -1, 0, 1, 3, 1_000, 1_796_040_000, 253_402_300_799, 253_402_300_800, .max,
    ]
    static let unsigned: [UInt64] = [
        0, 1, 1_796_039_000, 253_402_300_799, 253_402_300_800, UInt64(Int64.max), .max - 1, .max,
    ]

    static func scalar(_ random: inout SeededRandom) -> AMQPFieldValue {
        switch Int.random(in: 0..<9, using: &random) {
        case 0: return .int(random.pick(integers))
        case 1: return .int(Int64.random(in: .min ... .max, using: &random))
        case 2: return .timestamp(random.pick(unsigned))
        case 3: return .timestamp(UInt64.random(in: 0 ... .max, using: &random))
        case 4: return .double(random.pick([.nan, .infinity, -.infinity, 1e308, -1e308, 0.5, 1e20]))
        case 5: return .bytes(random.bytes(Int.random(in: 0...8, using: &random)))
        case 6: return .bool(random.chance(0.5))
        case 7: return .void
        default:
            return .string(
                random.pick([
                    "delivery_limit", "expired", "rejected", "", "klaviyo.profiles", "2026-11-30T12:00:00Z",
                    "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "99999999999999999999", "-5", "x",
                ]))
        }
    }

    static func value(_ random: inout SeededRandom, depth: Int) -> AMQPFieldValue {
        guard depth > 0, random.chance(0.3) else { return scalar(&random) }
        if random.chance(0.5) {
            return .array((0..<Int.random(in: 0...3, using: &random)).map { _ in value(&random, depth: depth - 1) })
        }
        return .table(table(&random, depth: depth - 1))
    }

    static func table(_ random: inout SeededRandom, depth: Int) -> AMQPTable {
        var table: AMQPTable = [:]
        for _ in 0..<Int.random(in: 0...4, using: &random) {
            table[random.pick(["reason", "queue", "count", "time", "exchange", "routing-keys", "x"])] = value(
                &random, depth: depth)
        }
        return table
    }

    /// One `x-death` entry: usually the broker's shape with absurd values, sometimes anything.
    static func death(_ random: inout SeededRandom) -> AMQPFieldValue {
        guard random.chance(0.85) else { return value(&random, depth: 2) }
        var entry: AMQPTable = [:]
        if random.chance(0.9) {
            entry["reason"] =
                random.chance(0.8) ? .string(random.pick(["delivery_limit", "expired"])) : scalar(&random)
        }
        if random.chance(0.8) { entry["queue"] = random.chance(0.8) ? .string("klaviyo.profiles") : scalar(&random) }
        if random.chance(0.8) { entry["count"] = random.chance(0.5) ? .int(random.pick(integers)) : scalar(&random) }
        if random.chance(0.9) {
            entry["time"] =
                random.chance(0.5)
                ? .timestamp(random.pick(unsigned))
                : random.chance(0.5) ? .int(random.pick(integers)) : scalar(&random)
        }
        return .table(entry)
    }

    static func headers(_ random: inout SeededRandom) -> AMQPTable {
        var headers: AMQPTable = [:]
        let relay = [
            "x-relay-error-code", "x-relay-error-detail", "x-relay-attempts", "x-relay-first-failed-at",
            "x-relay-last-failed-at", "x-original-routing-key", "x-original-exchange", "x-relay-command-id",
            "x-relay-account-id", "x-relay-type", "x-first-death-reason", "x-last-death-reason", "x-first-death-queue",
            "x-delivery-count", "CC", "BCC", "traceparent", "x-custom",
        ]
        for name in relay where random.chance(0.3) { headers[name] = value(&random, depth: 2) }
        if random.chance(0.7) {
            headers["x-death"] =
                random.chance(0.9)
                ? .array((0..<Int.random(in: 0...3, using: &random)).map { _ in death(&random) }) : scalar(&random)
        }
        return headers
    }

    static func body(_ random: inout SeededRandom) -> [UInt8] {
        switch Int.random(in: 0..<5, using: &random) {
        case 0: return random.bytes(Int.random(in: 0...40, using: &random))
        case 1: return Array(#"{"id":"c1","type":"profile.upsert","account_id":"org_1","payload":{}}"#.utf8)
        case 2:
            let number = random.pick(["1e308", "-1e308", "1e20", "9223372036854775808", "null", "[]", "{}", "\"\""])
            return Array(#"{"id":"#.utf8) + Array(number.utf8) + Array(#","account_id":"#.utf8) + Array(number.utf8)
                + Array(#","type":"#.utf8) + Array(number.utf8) + [UInt8(ascii: "}")]
        case 3:
            let depth = random.pick([10, 64, 65, 5000])
            return Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
        default: return []
        }
    }

    static func filter(_ random: inout SeededRandom) -> DeadLetterFilter {
        DeadLetterFilter(
            account: random.chance(0.2) ? random.pick(["org_1", ""]) : nil,
            type: random.chance(0.2) ? random.pick(["profile.*", "*", "profile.upsert", ""]) : nil,
            code: random.chance(0.2) ? random.pick(["delivery_limit", "unknown", "expired"]) : nil,
            olderThan: random.chance(0.5)
                ? random.pick([.zero, .seconds(1), .seconds(3600), .seconds(365 * 86_400), .seconds(Int64.max)]) : nil,
            limit: nil)
    }

    @Test func dlqToolsNeverTrapOnRandomDeadLetters() throws {
        let seed = SeededRandom.seed(default: 0xD1E_0001)
        print("DeadLetterFuzzTests.dlqToolsNeverTrapOnRandomDeadLetters seed \(seed) (FUZZ_SEED to reproduce)")
        var random = SeededRandom(seed: seed)
        let topology = RelayTopology()
        var dated = 0
        var brokerMade = 0
        for index in 0..<Self.cases {
            let label = "seed \(seed) case \(index)"
            let body = Self.body(&random)
            var headers = Self.headers(&random)
            // Some sealed as the relay would (those with a relay header it never writes stay unsealed).
            if random.chance(0.3) { deadLetterSeal.sealDeadLetter(&headers, body: body) }
            let delivery = deadDelivery(
                body: body, routingKey: random.pick(["profile.upsert", "", "1s"]), headers: headers,
                messageID: random.chance(0.5) ? "m-\(index)" : nil,
                timestamp: random.chance(0.5) ? random.pick(Self.unsigned) : nil)
            let nowMilliseconds = random.chance(0.8) ? now : random.pick(Self.integers)
            let summary = DeadLetterSummary(delivery, seal: deadLetterSeal)
            #expect(summary.sealed == (headers[HeaderSeal.header] != nil), "\(label)")
            if !summary.sealed, let account = headers["x-relay-account-id"]?.stringValue {
                #expect(summary.accountID != account || account == "org_1", "\(label): attributed by its header")
            }
            if summary.deadLetteredAtMilliseconds != nil { dated += 1 }
            if summary.brokerMade { brokerMade += 1 }

            if let age = summary.age(nowMilliseconds: nowMilliseconds) {
                #expect(age >= .zero, "\(label): negative age \(age)")
            }
            if let at = summary.deadLetteredAtMilliseconds {
                // RFC 3339 years 0000…9999, or an x-death time clamped to 1970…9999.
                #expect(at >= -62_167_219_200_000 && at <= 253_402_300_799_999, "\(label): time \(at)")
            }
            if let attempts = summary.attempts { #expect(attempts >= 0, "\(label): attempts \(attempts)") }
            #expect(!summary.code.isEmpty, "\(label): empty code")

            let filter = Self.filter(&random)
            if filter.matches(summary, nowMilliseconds: nowMilliseconds), let olderThan = filter.olderThan {
                let age = try #require(summary.age(nowMilliseconds: nowMilliseconds), "\(label)")
                #expect(age >= olderThan, "\(label): matched --older-than \(olderThan) at age \(age)")
            }

            // `dlq list --json`, `dlq export`: valid JSON whatever the headers held.
            let listed = summary.json(nowMilliseconds: nowMilliseconds).jsonBytes()
            #expect((try? JSONValue.parse(listed)) != nil, "\(label): list --json wrote invalid JSON")
            let held = DeadLetterQueue.Held(delivery: delivery, summary: summary)
            let exported = DeadLetterExport.line(held, nowMilliseconds: nowMilliseconds)
            let parsed = try? JSONValue.parse(Array(exported.utf8))
            #expect(parsed != nil, "\(label): export wrote invalid JSON")
            if let age = parsed?["summary"]?["age_seconds"], age != JSONValue.null {
                #expect((age.doubleValue ?? -1) >= 0, "\(label): age_seconds \(age)")
            }
            // `dlq show`.
            for (_, value) in delivery.properties.headers { _ = DeadLetterExport.describe(value) }

            // `dlq replay`: the original body, without the relay's and the broker's headers.
            let replay = DeadLetterQueue.replayMessage(for: delivery, topology: topology)
            #expect(replay.body == delivery.body, "\(label)")
            #expect(replay.routingKey == summary.originalRoutingKey, "\(label)")
            #expect(
                !replay.properties.headers.keys.contains {
                    $0.hasPrefix("x-relay-") || $0.hasPrefix("x-original-") || $0 == "x-death"
                        || $0 == "x-delivery-count"
                }, "\(label): replay kept relay or broker headers")
        }
        // The generator reaches both kinds of dead letter and plausible times too.
        #expect(dated > 100 && brokerMade > 100 && brokerMade < Self.cases, "dated \(dated), broker-made \(brokerMade)")
    }

    /// Regression: an `x-death` time of `UInt64.max` went through `Int64($0) * 1000` and trapped every `dlq`
    /// subcommand (they all summarise every dead letter they take); `dlq show` also trapped on `Int(seconds)`.
    @Test(arguments: [
        AMQPFieldValue.timestamp(.max), .timestamp(UInt64(Int64.max)), .timestamp(253_402_300_800), .int(.max),
        .int(.min), .int(-1),
    ])
    func absurdDeathTimeIsUnknownNotATrap(time: AMQPFieldValue) {
        let deaths: AMQPFieldValue = .array([
            .table([
                "reason": .string("delivery_limit"), "queue": .string("klaviyo.profiles"), "count": .int(.max),
                "time": time,
            ])
        ])
        let delivery = deadDelivery(
            body: Array(#"{"id":"c1","type":"profile.upsert","account_id":"org_1"}"#.utf8),
            routingKey: "profile.upsert",
            headers: ["x-death": deaths], messageID: "c1", timestamp: .max)
        let summary = DeadLetterSummary(delivery, seal: deadLetterSeal)
        #expect(summary.code == "delivery_limit")
        #expect(summary.deadLetteredAtMilliseconds == nil)
        #expect(summary.age(nowMilliseconds: now) == nil)
        #expect(summary.attempts == Int(Int64.max))
        #expect(!DeadLetterFilter(olderThan: .seconds(1)).matches(summary, nowMilliseconds: now))
        #expect(DeadLetterFilter(code: "delivery_limit").matches(summary, nowMilliseconds: now))
        #expect(DeadLetterExport.describe(.timestamp(.max)) == "9999-12-31T23:59:59.999Z")
        let line = DeadLetterExport.line(.init(delivery: delivery, summary: summary), nowMilliseconds: now)
        #expect(line.contains(#""timestamp":9223372036854775807"#))
    }

    @Test func plausibleDeathTimeStillGivesTheAge() {
        let deaths: AMQPFieldValue = .array([
            .table(["reason": .string("delivery_limit"), "time": .timestamp(UInt64(now / 1000 - 90))])
        ])
        let summary = DeadLetterSummary(
            deadDelivery(
                body: [], routingKey: "event.track", headers: ["x-death": deaths], messageID: nil, timestamp: nil),
            seal: deadLetterSeal)
        #expect(summary.age(nowMilliseconds: now) == .seconds(90))
        // A clock far in the past of the dead letter: age 0, never negative.
        #expect(summary.age(nowMilliseconds: .min) == .zero)
        #expect(summary.age(nowMilliseconds: .max) != nil)
    }

    /// Terminal-bound text: control characters, DEL, C1 and bidi overrides escaped; everything else as it was.
    @Test func terminalSafeTextEscapesControlsOnly() {
        #expect(DeadLetterExport.terminalSafe("org_42 café ✓") == "org_42 café ✓")
        #expect(DeadLetterExport.terminalSafe("\u{1b}]52;c;aGk=\u{07}") == "\\u{1b}]52;c;aGk=\\u{7}")
        #expect(DeadLetterExport.terminalSafe("a\u{7f}b\u{9b}c\u{202e}d") == "a\\u{7f}b\\u{9b}c\\u{202e}d")
        #expect(DeadLetterExport.terminalSafe("line\n\tnext") == "line\\u{a}\\u{9}next")
        #expect(DeadLetterExport.terminalSafe("line\n\tnext\u{1b}", keepingLines: true) == "line\n\tnext\\u{1b}")
    }
}
