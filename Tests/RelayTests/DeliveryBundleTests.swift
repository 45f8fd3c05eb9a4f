import Logging
import Testing

@testable import AMQP
@testable import Relay

@Suite("Delivery bundles (fairness between accounts)")
struct DeliveryBundleTests {
    let seal = HeaderSeal(keyRing: .development)
    let topology = RelayTopology()

    func member(_ account: String, _ index: Int, headers: AMQPTable = [:]) -> DeliveryBundle.Member {
        var properties = AMQPProperties(contentType: "application/json", headers: headers, persistent: true)
        properties.messageID = "m\(index)"
        properties.replyTo = "replies"
        properties.priority = 3
        properties.timestamp = 1_765_000_000
        let body = #"{"id":"c\#(index)","type":"profile.upsert","account_id":"\#(account)","payload":{}}"#
        return DeliveryBundle.Member(
            body: Array(body.utf8), properties: properties, exchange: "klaviyo.commands",
            routingKey: "profile.upsert", redelivered: index.isMultiple(of: 2))
    }

    @Test func membersSurviveTheRoundTripWithEveryHeaderType() throws {
        let headers: AMQPTable = [
            "s": .string("text ü"), "b": .bool(true), "i": .int(-42), "d": .double(2.5), "t": .timestamp(7),
            "nested": .table(["x-death": .array([.table(["count": .int(1)]), .void])]), "raw": .bytes([0, 255]),
            "v": .void,
        ]
        let original = DeliveryBundle(members: (0..<5).map { member("org_1", $0, headers: headers) })
        let decoded = try DeliveryBundle(decoding: original.encoded())
        #expect(decoded == original)
        #expect(decoded.members[1].properties.headers["nested"] == headers["nested"])
        #expect(decoded.members.map(\.redelivered) == [true, false, true, false, true])
    }

    @Test func malformedBodiesAreRefused() {
        let good = DeliveryBundle(members: [member("org_1", 1)]).encoded()
        #expect(throws: DeliveryBundle.Malformed.self) { try DeliveryBundle(decoding: Array("{\"id\":1}".utf8)) }
        #expect(throws: DeliveryBundle.Malformed.self) { try DeliveryBundle(decoding: Array(good.dropLast(3))) }
        #expect(throws: DeliveryBundle.Malformed.self) { try DeliveryBundle(decoding: good + [0]) }
        // A count far beyond the bytes present fails as truncated, without allocating for it.
        var huge = Array("KRB1".utf8) + [0xFF, 0xFF, 0xFF, 0xFF]
        huge += good.dropFirst(8)
        #expect(throws: DeliveryBundle.Malformed.self) { try DeliveryBundle(decoding: huge) }
    }

    @Test(arguments: [
        (#"{"id":"1","account_id":"org_1"}"#, "org_1"),
        (#" { "payload" : {"account_id":"inner","x":[1,{"a":"}"}]} , "account_id" : "org_2" } "#, "org_2"),
        (#"{"note":"say \"account_id\":\"no\"","account_id":"org_3"}"#, "org_3"),
        (#"{"n":-1.5e3,"t":true,"z":null,"account_id":"org_4"}"#, "org_4"),
        // Escapes are decoded as the command decoder decodes them (the scanner hands them to the parser).
        (#"{"account_id":"org\u005fhot"}"#, "org_hot"), (#"{"account\u005fid":"org_hot"}"#, "org_hot"),
        (#"{"note":"a\"b","account_id":"org\u0031"}"#, "org1"),
    ])
    func accountIDIsTheTopLevelMember(body: String, account: String) {
        #expect(DeliveryBundle.accountID(of: Array(body.utf8)) == account)
    }

    @Test(arguments: [
        #"{"payload":{"account_id":"inner"}}"#, #"["account_id","org_1"]"#, #"{"account_id":5}"#,
        #"{"account_id":"unterminated"#, "", "not json", #"{"account\u005fid":5}"#, #"{"a":"\u005f"}"#,
    ])
    func noAccountIDWithoutAPlainTopLevelString(body: String) {
        #expect(DeliveryBundle.accountID(of: Array(body.utf8)) == nil)
    }

    func fairness(concurrency: Int = 8, share: Double = 0.25, eventsPrefetch: Int? = nil) throws -> AccountFairness {
        let amqp = AMQPClient(
            configuration: try AMQPConfiguration(url: "amqp://127.0.0.1:1/%2f"), logger: Logger(label: "t"))
        return AccountFairness(
            settings: .init(
                concurrency: concurrency, fairShare: share, prefetch: 4 * concurrency, eventsPrefetch: eventsPrefetch),
            amqp: amqp, topology: topology, seal: seal, logger: Logger(label: "t"))
    }

    func incoming(
        _ member: DeliveryBundle.Member, redelivered: Bool = false, queue: String = "klaviyo.profiles"
    )
        -> AMQPDelivery
    {
        AMQPDelivery(
            body: member.body, properties: member.properties, exchange: member.exchange,
            routingKey: member.routingKey, redelivered: redelivered, deliveryTag: 1, consumerTag: "c", queue: queue,
            generation: 1, channel: 1)
    }

    @Test func anAccountAtItsShareIsBundledAndOthersAreNot() throws {
        let fairness = try fairness()  // 8 slots × 0.25: 2 per account
        #expect(fairness.settings.hotSlots == 2)
        for index in 0..<2 {
            guard case .process(account: "hot") = fairness.route(incoming(member("hot", index))) else {
                Issue.record("the first deliveries of an account are processed")
                return
            }
        }
        guard case .bundle(account: "hot") = fairness.route(incoming(member("hot", 2))) else {
            Issue.record("a delivery beyond the account's share is bundled")
            return
        }
        guard case .process(account: "other") = fairness.route(incoming(member("other", 3))) else {
            Issue.record("another account is processed")
            return
        }
        fairness.released(account: "hot")
        guard case .process(account: "hot") = fairness.route(incoming(member("hot", 4))) else {
            Issue.record("a released slot lets the account's next delivery through")
            return
        }
        // The unroutable queue is never bundled.
        guard case .process(account: nil) = fairness.route(incoming(member("hot", 5), queue: "klaviyo.unroutable"))
        else {
            Issue.record("unroutable deliveries are processed")
            return
        }
    }

    @Test func eventsInFlightAreHeldToWhatTheEventsPrefetchAddsAndCountApart() throws {
        // Batching on: the events queue's prefetch is the others' plus two full bulk calls.
        let settings = AccountFairness.Settings(concurrency: 64, fairShare: 0.25, prefetch: 256, eventsPrefetch: 2256)
        #expect(settings.hotSlots == 16 && settings.eventHotSlots == 1000)
        // Batching off (the same prefetch): events count like any command.
        #expect(AccountFairness.Settings(concurrency: 64, fairShare: 0.25, prefetch: 256).eventHotSlots == 16)
        #expect(
            AccountFairness.Settings(concurrency: 64, fairShare: 0, prefetch: 256, eventsPrefetch: 2256)
                .eventHotSlots == 0)

        let fairness = try fairness(eventsPrefetch: 4 * 8 + 6)  // 2 slots per account, 3 events in flight
        #expect(fairness.settings.eventHotSlots == 3)
        func event(_ index: Int) -> AMQPDelivery {
            var member = member("hot", index)
            member.body = Array(#"{"id":"ev\#(index)","type":"event.track","account_id":"hot","payload":{}}"#.utf8)
            member.routingKey = "event.track"
            return incoming(member, queue: "klaviyo.events")
        }
        for index in 0..<3 {
            guard case .process(account: "hot") = fairness.route(event(index)) else {
                Issue.record("event \(index) of 3 in flight is processed")
                return
            }
        }
        guard case .bundle(account: "hot") = fairness.route(event(3)) else {
            Issue.record("a 4th event in flight is bundled")
            return
        }
        // The account's profile commands have their own share.
        guard case .process(account: "hot") = fairness.route(incoming(member("hot", 10))) else {
            Issue.record("events in flight do not use up the account's slots in the other queues")
            return
        }
        fairness.released(account: "hot")  // a profile command's slot does not free an event's place
        guard case .bundle(account: "hot") = fairness.route(event(4)) else {
            Issue.record("a released profile slot let an event through")
            return
        }
        fairness.released(account: "hot", events: true)
        guard case .process(account: "hot") = fairness.route(event(5)) else {
            Issue.record("a finished event lets the next one through")
            return
        }
    }

    @Test func anEscapedAccountIDCountsAgainstItsAccount() throws {
        let fairness = try fairness()  // 2 slots per account
        for index in 0..<3 {
            var escaped = member("hot", index)
            escaped.body = Array(
                #"{"id":"e\#(index)","type":"profile.upsert","account\u005fid":"h\u006ft","payload":{}}"#.utf8)
            let route = fairness.route(incoming(escaped))
            switch (index, route) {
            case (0..<2, .process(account: "hot")), (2, .bundle(account: "hot")):
                continue
            default:
                Issue.record("delivery \(index) routed as \(route)")
            }
        }
    }

    @Test(arguments: [
        ("", "klaviyo.profiles"),  // published straight to the queue through the default exchange
        ("klaviyo.commands", "event.track"),  // carried to the profiles queue by a CC key
        ("klaviyo.commands", "profile.upsert.extra"),
    ])
    func aDeliveryWhoseRouteDoesNotLeadBackToItsQueueIsNotBundled(exchange: String, routingKey: String) throws {
        let fairness = try fairness()
        fairness.claim("hot")
        fairness.claim("hot")
        var stray = member("hot", 1)
        stray.exchange = exchange
        stray.routingKey = routingKey
        guard case .process(account: "hot") = fairness.route(incoming(stray)) else {
            Issue.record("a bundle of it would go back by a route that does not reach its queue")
            return
        }
        guard case .bundle(account: "hot") = fairness.route(incoming(member("hot", 2))) else {
            Issue.record("a delivery routed by its type is still bundled")
            return
        }
    }

    @Test(arguments: [
        ("profile.upsert", RelayQueue.profiles), ("list.add_profiles", .profiles), ("subscription.x", .profiles),
        ("event.track", .events), ("campaign.send", .campaigns), ("connection.validate", .campaigns),
        ("klaviyo.profiles", nil), ("profile.upsert.x", nil), ("profile.", nil), (".upsert", nil), ("profile", nil),
        ("", nil), ("Profile.upsert", nil),
    ])
    func aRoutingKeyRoutesLikeTheCommandsExchangesBindings(key: String, queue: RelayQueue?) {
        #expect(RelayQueue.routing(key) == queue)
    }

    @Test func aSealedReservedSlotIsExemptAndAForgedOneIsNot() throws {
        let fairness = try fairness()
        fairness.claim("hot")
        fairness.claim("hot")
        var sealed = member("hot", 1)
        var headers: AMQPTable = [DelayedRetry.Header.slot: .string("create_or_update_profile m 1765000000000")]
        seal.seal(&headers, body: sealed.body)
        sealed.properties.headers = headers
        guard case .process(account: "hot") = fairness.route(incoming(sealed)) else {
            Issue.record("a command returning to its reserved slot is processed on time")
            return
        }
        var forged = member("hot", 2)
        forged.properties.headers = [DelayedRetry.Header.slot: .string("create_or_update_profile m 1")]
        guard case .bundle = fairness.route(incoming(forged)) else {
            Issue.record("an unsealed x-relay-slot does not exempt a delivery")
            return
        }
    }

    @Test func onlyASealedBundleIsUnpackedAndARedeliveredOneIsDissolved() throws {
        let fairness = try fairness()
        let bundle = DeliveryBundle(members: [member("hot", 1), member("hot", 2)])
        let message = fairness.bundleMessage(
            bundle.encoded(), count: 2, route: "profile.upsert", tier: topology.retryTiers[0])
        #expect(message.exchange == topology.retryExchange && message.routingKey == topology.retryTiers[0].name)
        let parked = DeliveryBundle.Member(
            body: message.body, properties: message.properties, exchange: "klaviyo.commands", routingKey: "1s",
            redelivered: false)
        guard case .unpack(let unpacked, account: "hot") = fairness.route(incoming(parked)) else {
            Issue.record("a sealed bundle is unpacked")
            return
        }
        #expect(unpacked == bundle)
        let members = fairness.members(of: incoming(parked), unpacked)
        #expect(members.map(\.body) == bundle.members.map(\.body))
        #expect(members.allSatisfy { $0.localSettlement != nil && $0.queue == "klaviyo.profiles" })
        guard case .dissolve = fairness.route(incoming(parked, redelivered: true)) else {
            Issue.record("a redelivered bundle is dissolved")
            return
        }
        // The count changed after sealing: not the relay's bundle, so an ordinary (undecodable) command.
        var tampered = parked
        tampered.properties.headers[DeliveryBundle.header] = .int(3)
        guard case .process(account: nil) = fairness.route(incoming(tampered)) else {
            Issue.record("a bundle header that does not verify is an ordinary command")
            return
        }
    }

    @Test func aLocalSettlementRecordsTheFirstSettlementOnly() async throws {
        let amqp = AMQPClient(
            configuration: try AMQPConfiguration(url: "amqp://127.0.0.1:1/%2f"), logger: Logger(label: "t"))
        let settlement = AMQPLocalSettlement()
        let unpacked = AMQPDelivery.unpacked(
            body: [1], properties: .init(), exchange: "e", routingKey: "r", redelivered: false, queue: "q",
            consumerTag: "c", settlement: settlement)
        #expect(settlement.kind == nil)
        try await amqp.ack(unpacked)
        #expect(settlement.kind == .ack)
        await #expect(throws: AMQPError.self) { try await amqp.nack(unpacked, requeue: true) }
        #expect(settlement.kind == .ack)
    }

    /// A bundle is one message, so its size is bounded (the broker refuses a message over its max size): an open
    /// bundle is full once its members reach ``AccountFairness/Settings/maxBytes``, and a flush splits its members
    /// into runs that each fit.
    @Test func bundlesAreBoundedInBytes() throws {
        let fairness = try fairness()
        #expect(fairness.settings.maxBytes == 8 * 1024 * 1024)
        func large(_ index: Int, megabytes: Int) -> AMQPDelivery {
            var large = member("hot", index)
            large.body += Array(repeating: UInt8(ascii: " "), count: megabytes * 1024 * 1024)
            return incoming(large)
        }
        guard case .opened(let key, let generation) = fairness.add(large(0, megabytes: 3), account: "hot") else {
            Issue.record("the first delivery opens a bundle")
            return
        }
        guard case .joined = fairness.add(large(1, megabytes: 3), account: "hot") else {
            Issue.record("6 MB of members leave the bundle open")
            return
        }
        guard case .full(key, generation) = fairness.add(large(2, megabytes: 3), account: "hot") else {
            Issue.record("9 MB of members fill the bundle long before its member count")
            return
        }

        let mb = 1024 * 1024
        #expect(AccountFairness.slices([3 * mb, 3 * mb, 3 * mb], maxBytes: 8 * mb) == [0..<2, 2..<3])
        #expect(AccountFairness.slices([20 * mb, 1, 1, 20 * mb], maxBytes: 8 * mb) == [0..<1, 1..<3, 3..<4])
        #expect(AccountFairness.slices(Array(repeating: 100, count: 50), maxBytes: 8 * mb) == [0..<50])
        #expect(AccountFairness.slices([], maxBytes: 8 * mb).isEmpty)
        let one = DeliveryBundle.Member(large(3, megabytes: 1))
        #expect(one.encodedSize + AccountFairness.bundleOverhead == DeliveryBundle(members: [one]).encoded().count)
    }
}
