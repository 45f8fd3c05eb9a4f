import Klaviyo
import Relay
import Testing

@testable import AMQP

/// The seal the relay's dead letters carry in these tests (the development key ring).
let deadLetterSeal = HeaderSeal(keyRing: .development)

/// `headers` as the relay writes them on a dead letter of `body`: sealed.
func sealedDeadLetter(_ headers: AMQPTable, body: String) -> AMQPTable {
    var sealed = headers
    deadLetterSeal.sealDeadLetter(&sealed, body: Array(body.utf8))
    return sealed
}

/// The dead letter the relay makes of `delivery` (``DeadLetter/message(for:topology:code:detail:attempts:firstFailedAt:commandID:accountID:type:seal:)``),
/// as `dlq` takes it from the dead queue.
func relayDeadLetter(
    of delivery: AMQPDelivery, code: DeadLetterCode = .notJSON, commandID: String? = nil, accountID: String? = nil,
    type: String? = nil, seal: HeaderSeal = deadLetterSeal
) -> AMQPDelivery {
    let message = DeadLetter.message(
        for: delivery, topology: RelayTopology(), code: code, detail: "body is not valid JSON", attempts: 1,
        firstFailedAt: nil, commandID: commandID, accountID: accountID, type: type, seal: seal)
    return deadDelivery(
        body: message.body, routingKey: message.routingKey, headers: message.properties.headers,
        messageID: message.properties.messageID, timestamp: nil)
}

/// Whose dead letter it is: the account, command id and type the body names, not `x-relay-*` headers a publisher
/// wrote on its command (a broker-made dead letter keeps them as published). The headers speak only for a body that
/// names nothing, and only on a dead letter the relay sealed.
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
                body: body, routingKey: "profile.upsert", headers: forged, messageID: "forgers-command", timestamp: nil),
            seal: deadLetterSeal)
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

    /// `--id` is the command's id: a dead letter whose body names its own command matches only that id, never the
    /// message id its publisher set (another command's id); a dead letter that names no command is found by its
    /// message id.
    @Test func theIDFilterMatchesTheMessageIDOnlyForADeadLetterThatNamesNoCommand() {
        let now: Int64 = 1_796_040_000_000
        let named = DeadLetterSummary(
            deadDelivery(
                body: Array(#"{"id":"forgers-command","type":"profile.upsert","account_id":"acct-forger"}"#.utf8),
                routingKey: "profile.upsert", headers: forged, messageID: "victims-command", timestamp: nil),
            seal: deadLetterSeal)
        #expect(!DeadLetterFilter(id: "victims-command").matches(named, nowMilliseconds: now))
        #expect(DeadLetterFilter(id: "forgers-command").matches(named, nowMilliseconds: now))
        let anonymous = DeadLetterSummary(
            deadDelivery(
                body: Array("not json".utf8), routingKey: "profile.upsert", headers: forged, messageID: "m-1",
                timestamp: nil),
            seal: deadLetterSeal)
        #expect(anonymous.commandID == nil)
        #expect(DeadLetterFilter(id: "m-1").matches(anonymous, nowMilliseconds: now))
    }

    /// (a) A dead letter the relay made carries its seal, which verifies: its headers name the account, command id
    /// and type of a body that names nothing.
    @Test func aRelayMadeDeadLetterIsSealedAndItsHeadersSpeakForABodyThatNamesNothing() {
        let dead = relayDeadLetter(
            of: delivery(body: "{not json", routingKey: "x"), commandID: "cmd-1", accountID: "acct-1",
            type: "profile.upsert")
        #expect(dead.properties.headers[HeaderSeal.header]?.stringValue?.count == 64, "the dead letter is sealed")
        #expect(deadLetterSeal.verifiesDeadLetter(dead.properties.headers, body: dead.body))
        let summary = DeadLetterSummary(dead, seal: deadLetterSeal)
        #expect(summary.sealed && !summary.brokerMade)
        #expect(summary.accountID == "acct-1")
        #expect(summary.commandID == "cmd-1")
        #expect(summary.type == "profile.upsert")
        #expect(summary.code == "not_json")
        #expect(summary.json(nowMilliseconds: 0)["sealed"] == .bool(true))
        #expect(DeadLetterFilter(account: "acct-1").matches(summary, nowMilliseconds: 1_796_040_000_000))
    }

    /// (b) An unsealed `x-relay-error-code` (an older relay's dead letter, or a publisher's forgery the broker
    /// dead-lettered or someone put on the dead queue) still shows its code and detail for triage, but its
    /// `x-relay-*` headers never attribute it: it belongs to no account, command or type.
    @Test func anUnsealedErrorCodeIsShownButNeverAttributed() {
        let headers: AMQPTable = [
            "x-relay-error-code": .string("retries_exhausted"), "x-relay-error-detail": .string("5 attempts"),
            "x-relay-account-id": .string("acct-victim"), "x-relay-command-id": .string("victims-command"),
            "x-relay-type": .string("campaign.send"), "x-relay-attempts": .int(5),
        ]
        let summary = DeadLetterSummary(
            deadDelivery(
                body: Array("not json at all".utf8), routingKey: "profile.upsert", headers: headers, messageID: nil,
                timestamp: nil),
            seal: deadLetterSeal)
        #expect(!summary.sealed)
        #expect(summary.code == "retries_exhausted" && summary.detail == "5 attempts" && summary.attempts == 5)
        #expect(summary.accountID == nil && summary.commandID == nil && summary.type == nil)
        let now: Int64 = 1_796_040_000_000
        #expect(!DeadLetterFilter(account: "acct-victim").matches(summary, nowMilliseconds: now))
        #expect(!DeadLetterFilter(id: "victims-command").matches(summary, nowMilliseconds: now))
        #expect(!DeadLetterFilter(type: "campaign.*").matches(summary, nowMilliseconds: now))
        #expect(DeadLetterStats([summary], nowMilliseconds: now).byAccount == ["-": 1])
        #expect(summary.json(nowMilliseconds: now)["sealed"] == .bool(false))
    }

    /// A publisher's `x-relay-error-code` on a command the broker dead-lettered at its delivery limit is not the
    /// reason: the broker's `x-death` is.
    @Test func aForgedCodeOnABrokerMadeDeadLetterIsTheDeliveryLimit() {
        var headers = forged
        headers["x-relay-error-code"] = .string("klaviyo_rejected")
        headers["x-relay-error-detail"] = .string("ask support to replay it as acct-victim")
        let summary = DeadLetterSummary(
            deadDelivery(
                body: Array("not json at all".utf8), routingKey: "profile.upsert", headers: headers, messageID: nil,
                timestamp: nil),
            seal: deadLetterSeal)
        #expect(summary.brokerMade && !summary.sealed)
        #expect(summary.code == "delivery_limit")
        #expect(!summary.detail.contains("acct-victim"))
        #expect(summary.accountID == nil && summary.commandID == nil && summary.type == nil)
    }

    /// (c) A seal proves these relay headers for this body only: copied onto another body, or onto headers with a
    /// relay header changed, added or removed, or made with another relay's key, it does not verify, and the dead
    /// letter is attributed by nothing but its body.
    @Test func aSealCopiedOntoAnotherBodyOrOtherHeadersDoesNotVerify() throws {
        let genuine = relayDeadLetter(
            of: delivery(body: "victim's garbage", routingKey: "profile.upsert"), commandID: "victims-command",
            accountID: "acct-victim", type: "profile.upsert")
        let sealed = genuine.properties.headers
        #expect(deadLetterSeal.verifiesDeadLetter(sealed, body: genuine.body))
        func transplant(_ headers: AMQPTable, body: String = "victim's garbage") -> DeadLetterSummary {
            DeadLetterSummary(
                deadDelivery(
                    body: Array(body.utf8), routingKey: "profile.upsert", headers: headers, messageID: nil,
                    timestamp: nil),
                seal: deadLetterSeal)
        }
        var renamed = sealed
        renamed["x-relay-account-id"] = .string("acct-forger")
        var added = sealed
        added["x-relay-slot"] = .string("profile 1 0")
        var removed = sealed
        removed["x-relay-type"] = nil
        var retyped = sealed
        retyped["x-relay-attempts"] = .string("1")
        var uppercased = sealed
        uppercased[HeaderSeal.header] = .string((sealed[HeaderSeal.header]?.stringValue ?? "").uppercased())
        #expect(transplant(uppercased).sealed, "the hex seal is read in either case")
        for (label, summary) in [
            ("another body", transplant(sealed, body: "forger's garbage")), ("a changed header", transplant(renamed)),
            ("an added header", transplant(added)), ("a removed header", transplant(removed)),
            ("a header of another type", transplant(retyped)),
        ] {
            #expect(!summary.sealed, "\(label)")
            #expect(summary.accountID == nil && summary.commandID == nil && summary.type == nil, "\(label)")
            #expect(
                !DeadLetterFilter(account: "acct-victim").matches(summary, nowMilliseconds: 1_796_040_000_000),
                "\(label)")
        }
        let strangerKey = try EncryptionKeyRing(specification: EncryptionKeyRing.generateSpecification(keyID: "x"))
        let stranger = relayDeadLetter(
            of: delivery(body: "victim's garbage", routingKey: "profile.upsert"), accountID: "acct-victim",
            seal: HeaderSeal(keyRing: strangerKey))
        #expect(!DeadLetterSummary(stranger, seal: deadLetterSeal).sealed)
        #expect(DeadLetterSummary(stranger, seal: deadLetterSeal).accountID == nil)
    }

    /// A dead letter's seal is not a retry's (nor the other way round): a dead letter moved back onto the commands
    /// exchange headers and all is a fresh command to the consumers, a retry the broker dead-lettered is not
    /// relay-made, and a replay carries no seal and no relay header.
    @Test func aDeadLettersSealIsNotARetrysSeal() {
        let body = #"{"id":"c1","type":"profile.upsert","account_id":"org_1"}"#
        let dead = relayDeadLetter(
            of: delivery(body: body), code: .retriesExhausted, commandID: "c1", accountID: "org_1",
            type: "profile.upsert")
        let movedBack = delivery(body: body, headers: dead.properties.headers)
        #expect(DelayedRetry.State(delivery: movedBack, seal: deadLetterSeal) == .init())
        #expect(!deadLetterSeal.trustedHeaders(of: movedBack).keys.contains(where: HeaderSeal.isRelayHeader))

        let retry = DelayedRetry.message(
            for: delivery(body: "not json"), topology: RelayTopology(), tier: .init("1s", .seconds(1)),
            routingKey: "profile.upsert", attempts: 2, firstFailedAt: "2026-11-29T12:00:00.000Z", lastError: "503",
            seal: deadLetterSeal)
        var retryHeaders = retry.properties.headers
        #expect(deadLetterSeal.verify(retryHeaders, body: retry.body))
        #expect(!deadLetterSeal.verifiesDeadLetter(retryHeaders, body: retry.body))
        retryHeaders["x-relay-error-code"] = .string("not_connected")
        retryHeaders["x-relay-account-id"] = .string("acct-victim")
        let brokerMadeRetry = DeadLetterSummary(
            deadDelivery(
                body: retry.body, routingKey: "profile.upsert", headers: retryHeaders, messageID: nil, timestamp: nil),
            seal: deadLetterSeal)
        #expect(!brokerMadeRetry.sealed && brokerMadeRetry.accountID == nil)

        let replay = DeadLetterQueue.replayMessage(for: dead, topology: RelayTopology())
        #expect(replay.properties.headers[HeaderSeal.header] == nil)
        #expect(!replay.properties.headers.keys.contains(where: HeaderSeal.isRelayHeader))
    }

    /// The seals' formats are fixed: a retry sealed by an older relay (v1) and a dead letter sealed by this one
    /// verify after an upgrade. Vectors computed outside Swift (Python `hmac`/`hashlib`: HKDF-SHA256 of the
    /// development key, info "klaviyo-relay header seal v1").
    @Test func sealFormatsAreStable() {
        let retryHeaders: AMQPTable = [
            "x-relay-attempts": .int(2), "x-relay-first-failed-at": .string("2026-11-29T12:00:00.000Z"),
            "x-original-routing-key": .string("profile.upsert"), "x-original-exchange": .string("klaviyo.commands"),
            "x-relay-last-error": .string("503"),
            HeaderSeal.header: .string("1fefe24cbf8ba9c28cc47bbd54a1a5356a905a8248aa77956e40c0cadc0b1b1a"),
        ]
        #expect(deadLetterSeal.verify(retryHeaders, body: Array(#"{"id":"c1"}"#.utf8)))
        var deadHeaders: AMQPTable = [
            "x-relay-error-code": .string("not_json"), "x-relay-account-id": .string("acct-a"),
            "x-relay-attempts": .int(1), "traceparent": .string("00-abc-01"),
        ]
        deadLetterSeal.sealDeadLetter(&deadHeaders, body: Array("not json".utf8))
        #expect(
            deadHeaders[HeaderSeal.header]
                == .string("6aeb019cc65174dd91b1fa64407f3c0b6b907ed1e8f4a7ee5bdd3b164672139c"))
    }

    /// A broker-made dead letter (no `x-relay-error-code`) whose body names nothing (not JSON) belongs to no
    /// account: its `x-relay-*` headers are the publisher's, and `--account acct-victim` must not select it.
    @Test func aBrokerMadeDeadLetterOfABodyThatNamesNothingBelongsToNoAccount() {
        let delivery = deadDelivery(
            body: Array("not json at all".utf8), routingKey: "profile.upsert", headers: forged, messageID: nil,
            timestamp: nil)
        let summary = DeadLetterSummary(delivery, seal: deadLetterSeal)
        #expect(summary.brokerMade)
        #expect(summary.accountID == nil)
        #expect(summary.commandID == nil)
        #expect(summary.type == nil)
        #expect(!DeadLetterFilter(account: "acct-victim").matches(summary, nowMilliseconds: 1_796_040_000_000))
    }
}
