import Klaviyo
import Relay
import Testing

@testable import AMQP

/// `publish --wait` reads its reply queue as `dlq` reads the dead queue: a dead letter ends the wait of the command
/// its body names (or, sealed by the relay, its `x-relay-command-id`), never of a command a publisher's headers name.
@Suite("publish --wait's reply queue")
struct ReplyQueueDeliveryTests {
    static let deadExchange = RelayTopology().deadExchange

    static func read(_ delivery: AMQPDelivery) -> ReplyQueueDelivery {
        ReplyQueueDelivery(delivery, deadExchange: deadExchange, seal: deadLetterSeal)
    }

    @Test func aSealedDeadLetterEndsItsCommandsWait() {
        let dead = relayDeadLetter(
            of: delivery(body: "{not json", routingKey: "profile.upsert"), commandID: "cmd-ours",
            accountID: "acct-1", type: "profile.upsert")
        #expect(dead.exchange == Self.deadExchange)
        guard case .deadLetter(let id, let code, _, let sealed) = Self.read(dead) else {
            Issue.record("not read as a dead letter: \(Self.read(dead))")
            return
        }
        #expect(id == "cmd-ours" && code == "not_json" && sealed)
    }

    /// A publisher's own command, dead-lettered by the broker at its delivery limit, carrying forged relay headers
    /// that name someone else's command: it ends the forger's command (its body's id) as `delivery_limit`, never
    /// the victim's as the forged code.
    @Test func forgedHeadersOnABrokerMadeDeadLetterNameOnlyTheBodysCommand() {
        let headers: AMQPTable = [
            "x-relay-error-code": .string("klaviyo_rejected"), "x-relay-command-id": .string("victims-command"),
            "x-death": .array([.table(["reason": .string("delivery_limit"), "count": .int(10)])]),
        ]
        let forged = deadDelivery(
            body: Array(#"{"id":"forgers-command","type":"profile.upsert","account_id":"acct-f"}"#.utf8),
            routingKey: "profile.upsert", headers: headers, messageID: "victims-command", timestamp: nil)
        #expect(
            Self.read(forged)
                == .deadLetter(
                    commandID: "forgers-command", code: "delivery_limit", detail: Self.detail(of: forged), sealed: false
                ))
        // With a body that names no command, the unsealed headers name nothing either.
        let anonymous = deadDelivery(
            body: Array("not json".utf8), routingKey: "profile.upsert", headers: headers, messageID: "victims-command",
            timestamp: nil)
        #expect(Self.read(anonymous) == .unrecognized)
    }

    /// A command of ours that the broker dead-lettered carries no `x-relay-error-code`: it still ends the wait, as
    /// `delivery_limit` (it used to be taken for a result, fail to parse, and leave the wait to time out).
    @Test func aBrokerMadeDeadLetterOfOurCommandEndsItsWait() {
        let dead = deadDelivery(
            body: Array(#"{"id":"cmd-ours","type":"profile.upsert","account_id":"acct-1","payload":{}}"#.utf8),
            routingKey: "profile.upsert",
            headers: ["x-death": .array([.table(["reason": .string("delivery_limit"), "count": .int(10)])])],
            messageID: "cmd-ours", timestamp: nil)
        guard case .deadLetter(let id, let code, _, let sealed) = Self.read(dead) else {
            Issue.record("not read as a dead letter: \(Self.read(dead))")
            return
        }
        #expect(id == "cmd-ours" && code == "delivery_limit" && !sealed)
    }

    @Test func aResultToTheReplyQueueIsAResultAndAnythingElseIsNot() {
        let result = CommandResult(
            commandID: "cmd-ours", type: "profile.upsert", accountID: "acct-1", outcome: .succeeded, attempts: 1,
            klaviyo: .init(status: 200, ids: ["01PROFILE"]), error: nil, completedAt: "2026-12-08T00:00:00.000Z",
            durationMS: 12, traceparent: nil)
        let reply = delivery(body: String(decoding: result.jsonValue.jsonBytes(), as: UTF8.self), exchange: "")
        #expect(Self.read(reply) == .result(result))
        #expect(Self.read(delivery(body: #"{"id":"cmd-ours"}"#, exchange: "")) == .unrecognized)
    }

    static func detail(of delivery: AMQPDelivery) -> String {
        DeadLetterSummary(delivery, seal: deadLetterSeal).detail
    }
}
