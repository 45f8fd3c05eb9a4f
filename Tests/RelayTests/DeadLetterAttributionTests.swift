import Klaviyo
import Relay
import Testing

@testable import AMQP

/// Whose dead letter it is: the account, command id and type the body names, not `x-relay-*` headers a publisher
/// wrote on its command (a broker-made dead letter keeps them as published). The headers speak only for a body that
/// names nothing (a relay-made dead letter of a body that is not JSON).
@Suite("Dead letters are attributed by their body")
struct DeadLetterAttributionTests {
    let forged: AMQPTable = [
        "x-relay-account-id": .string("acct-victim"), "x-relay-command-id": .string("victims-command"),
        "x-relay-type": .string("campaign.send"),
        "x-death": .array([
            .table(["reason": .string("delivery_limit"), "queue": .string("klaviyo.profiles"), "count": .int(2)])
        ]),
    ]

    @Test func theBodyWinsOverForgedHeaders() {
        let body = Array(
            #"{"id":"forgers-command","type":"profile.upsert","account_id":"acct-forger","payload":{}}"#.utf8)
        let summary = DeadLetterSummary(
            deadDelivery(
                body: body, routingKey: "profile.upsert", headers: forged, messageID: "forgers-command", timestamp: nil)
        )
        #expect(summary.accountID == "acct-forger")
        #expect(summary.commandID == "forgers-command")
        #expect(summary.type == "profile.upsert")
        #expect(summary.code == "delivery_limit")
        let now: Int64 = 1_796_040_000_000
        #expect(!DeadLetterFilter(account: "acct-victim").matches(summary, nowMilliseconds: now))
        #expect(!DeadLetterFilter(id: "victims-command").matches(summary, nowMilliseconds: now))
        #expect(!DeadLetterFilter(type: "campaign.*").matches(summary, nowMilliseconds: now))
        #expect(DeadLetterFilter(account: "acct-forger", id: "forgers-command").matches(summary, nowMilliseconds: now))
    }

    @Test func headersSpeakForABodyThatNamesNothing() {
        let headers: AMQPTable = [
            "x-relay-error-code": .string("not_json"), "x-relay-account-id": .string("acct-1"),
            "x-relay-command-id": .string("cmd-1"),
        ]
        let delivery = deadDelivery(
            body: Array("{not json".utf8), routingKey: "x", headers: headers, messageID: nil, timestamp: nil)
        let summary = DeadLetterSummary(delivery)
        #expect(summary.accountID == "acct-1")
        #expect(summary.commandID == "cmd-1")
        #expect(summary.code == "not_json")
    }

    /// A broker-made dead letter (no `x-relay-error-code`) whose body names nothing (not JSON) belongs to no
    /// account: its `x-relay-*` headers are the publisher's, and `--account acct-victim` must not select it.
    @Test func aBrokerMadeDeadLetterOfABodyThatNamesNothingBelongsToNoAccount() {
        let delivery = deadDelivery(
            body: Array("not json at all".utf8), routingKey: "profile.upsert", headers: forged, messageID: nil,
            timestamp: nil)
        let summary = DeadLetterSummary(delivery)
        #expect(summary.brokerMade)
        #expect(summary.accountID == nil)
        #expect(summary.commandID == nil)
        #expect(summary.type == nil)
        #expect(!DeadLetterFilter(account: "acct-victim").matches(summary, nowMilliseconds: 1_796_040_000_000))
    }
}
