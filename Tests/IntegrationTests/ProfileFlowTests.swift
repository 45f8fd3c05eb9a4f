import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// End to end through the real broker, Redis and klaviyo-sim, with real `klaviyo-relay consume` processes.
@Suite("Profile commands end to end", .timeLimit(.minutes(3)))
struct ProfileFlowTests {
    @Test func profileRoundTrip() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let up1 = stack.id("up-1")
            let upd1 = stack.id("upd-1")
            let get1 = stack.id("get-1")
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1)

            // A reply queue proves results also go to reply_to with the correlation id.
            let replyQueue = "reply.\(stack.prefix)"
            var declaration = AMQPTopology()
            declaration.queues = [.init(name: replyQueue, durable: false, autoDelete: false)]
            try await stack.amqp.declare(declaration)

            let email = "sarah.\(UUID().uuidString.prefix(6).lowercased())@example.com"
            try await stack.publish(
                commandBody(
                    id: up1, type: "profile.upsert", accountID: account,
                    payload: [
                        "profile": ["email": .string(email), "first_name": "Sarah", "properties": ["plan": "pro"]]
                    ]),
                routingKey: "profile.upsert", messageID: up1, replyTo: replyQueue,
                headers: ["traceparent": .string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])
            try await stack.waitForCollected(1)
            let upsert = try #require(stack.results(for: up1).first)
            #expect(upsert.outcome == .succeeded)
            #expect(upsert.klaviyo?.status == 201)
            #expect(upsert.attempts == 1)
            #expect(upsert.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            let profileID = try #require(upsert.klaviyo?.ids.first)
            try ContractValidator.validateResult(try JSONValue.parse(stack.deliveries[0].body))
            #expect(stack.deliveries[0].routingKey == "profile.upsert.succeeded")

            // The reply is published right after the results-exchange copy: wait for it.
            var reply: AMQPDelivery?
            try await eventually("the reply on reply_to", timeout: .seconds(10)) {
                reply = try await stack.amqp.get(queue: replyQueue)
                return reply != nil
            }
            #expect(reply?.properties.correlationID == up1)
            #expect(reply.flatMap { try? JSONValue.parse($0.body) }?["command_id"]?.stringValue == up1)
            try await stack.amqp.deleteQueue(replyQueue)

            let simProfiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/profiles")
            let stored = try #require(simProfiles["profiles"]?.arrayValue?.first)
            #expect(stored["id"]?.stringValue == profileID)
            #expect(stored["email"]?.stringValue == email)

            try await stack.publish(
                commandBody(
                    id: upd1, type: "profile.update", accountID: account,
                    payload: [
                        "profile_id": .string(profileID),
                        "profile": ["first_name": "Sally", "properties": ["plan": "team"]],
                    ]),
                routingKey: "profile.update", messageID: upd1)
            try await stack.waitForCollected(2)
            #expect(stack.results(for: upd1).first?.klaviyo?.status == 200)

            try await stack.publish(
                commandBody(id: get1, type: "profile.get", accountID: account, payload: ["email": .string(email)]),
                routingKey: "profile.get", messageID: get1)
            try await stack.waitForCollected(3)
            let fetched = try #require(stack.results(for: get1).first)
            #expect(fetched.klaviyo?.ids == [profileID])
            #expect(fetched.klaviyo?.data?["profile"]?["attributes"]?["first_name"] == "Sally")
            #expect(fetched.klaviyo?.data?["profile"]?["attributes"]?["properties"]?["plan"] == "team")

            // Publishing the same command again does not call Klaviyo again: the stored result is re-published.
            let importsBefore = try await stack.klaviyoRequests(account: account).filter {
                $0["path"] == "/api/profile-import"
            }.count
            // (The very same command: the same payload. Another payload under this id would be an id_conflict.)
            try await stack.publish(
                commandBody(
                    id: up1, type: "profile.upsert", accountID: account,
                    payload: [
                        "profile": ["email": .string(email), "first_name": "Sarah", "properties": ["plan": "pro"]]
                    ]),
                routingKey: "profile.upsert", messageID: up1)
            try await stack.waitForCollected(4)
            #expect(stack.deadLetters.isEmpty)
            let importsAfter = try await stack.klaviyoRequests(account: account).filter {
                $0["path"] == "/api/profile-import"
            }.count
            #expect(importsBefore == 1)
            #expect(importsAfter == importsBefore, "a duplicate command must not reach Klaviyo")
            // The account's sync status counts the three commands that reached Klaviyo (not the duplicate).
            var sync: [String: String] = [:]
            try await eventually("the sync status to count three commands", timeout: .seconds(10)) {
                sync = try await stack.redis.hashGetAll(RedisKeys.sync(account))
                return sync["succeeded"] == "3"
            }
            #expect(sync["last_success_at"].map { $0.hasPrefix("20") } == true)
            let history = try JSONValue.parse(Array((sync["history"] ?? "[]").utf8)).arrayValue ?? []
            #expect(history.compactMap { $0["command_id"]?.stringValue } == [up1, upd1, get1])
            #expect(stack.results(for: up1).count == 2)
            #expect(stack.results(for: up1).allSatisfy { $0.klaviyo?.ids == [profileID] })
        }
    }

    @Test func malformedMessagesAreDeadLetteredWhileGoodOnesSucceed() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let consumer = try stack.startConsumer(environment: ["RELAY_MAX_MESSAGE_BYTES": "8192"])
            try await stack.waitForConsumers(1)

            let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
            let malformed: [(body: [UInt8], routingKey: String, code: String)] = [
                (Array("this is not json".utf8), "profile.upsert", "not_json"),
                ([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], "profile.upsert", "not_json"),
                (
                    Array(
                        #"{"id":"x","type":"profile.upsert","account_id":"a","created_at":"2026-11-29T12:00:00Z","payload":\#(deep)}"#
                            .utf8), "profile.upsert", "not_json"
                ),
                (Array(repeating: UInt8(ascii: " "), count: 9000), "profile.upsert", "too_large"),
                (
                    commandBody(id: "bad-type", type: "profile.explode", accountID: account, payload: [:]),
                    "profile.explode", "unknown_type"
                ),
                (
                    commandBody(
                        id: "bad-schema", type: "profile.upsert", accountID: account,
                        payload: ["profile": ["email": "not-an-email"]]), "profile.upsert", "schema_invalid"
                ),
                (
                    commandBody(
                        id: "no-conn", type: "profile.upsert", accountID: "acct-never-connected",
                        payload: ["profile": ["email": "a@example.com"]]), "profile.upsert", "not_connected"
                ),
                (Array("[]".utf8), "profile.get", "schema_invalid"),
                (Array("".utf8), "profile.update", "not_json"),
                (
                    commandBody(
                        id: "bad-disconnect", type: "connection.disconnect", accountID: account,
                        payload: ["force": true]),
                    "connection.disconnect",
                    "schema_invalid"
                ),
            ]
            var expectedBad: [(body: [UInt8], routingKey: String, code: String)] = []
            var goodIDs: [String] = []
            for index in 0..<50 {
                let good = stack.id("good-\(index)")
                goodIDs.append(good)
                try await stack.publish(
                    commandBody(
                        id: good, type: "profile.upsert", accountID: account,
                        payload: ["profile": ["email": .string("good\(index)@example.com")]]),
                    routingKey: "profile.upsert", messageID: good)
                var bad = malformed[index % malformed.count]
                if bad.code == "schema_invalid" || bad.code == "unknown_type" || bad.code == "unsupported_type"
                    || bad.code == "not_connected"
                {
                    // Make every body unique so each dead letter can be matched to its message.
                    if var document = try? JSONValue.parse(bad.body), case .object(var members) = document {
                        members["id"] = .string(stack.id("bad-\(index)"))
                        document = .object(members)
                        bad.body = document.jsonBytes()
                    }
                }
                expectedBad.append(bad)
                try await stack.publish(bad.body, routingKey: bad.routingKey, messageID: stack.id("bad-\(index)"))
            }
            try await stack.waitForCollected(100, timeout: .seconds(90))
            for id in goodIDs {
                #expect(stack.results(for: id).count == 1, "\(id) needs exactly one result")
            }
            let deadLetters = stack.deadLetters
            #expect(deadLetters.count == 50)
            for bad in expectedBad {
                let matches = deadLetters.filter { $0.body == bad.body && $0.routingKey == bad.routingKey }
                #expect(!matches.isEmpty, "missing dead letter for a \(bad.code) message")
                for letter in matches {
                    #expect(letter.properties.headers[DeadLetter.Header.errorCode]?.stringValue == bad.code)
                    #expect(
                        letter.properties.headers[DeadLetter.Header.originalRoutingKey]?.stringValue == bad.routingKey)
                    #expect(
                        letter.properties.headers[DeadLetter.Header.originalExchange]?.stringValue
                            == stack.topology.commandsExchange)
                    #expect(
                        letter.properties.messageID?.hasPrefix(stack.id("bad-")) == true, "original properties are kept"
                    )
                    let detail = letter.properties.headers[DeadLetter.Header.errorDetail]?.stringValue ?? ""
                    #expect(!detail.isEmpty)
                    try ContractValidator.validateDeadLetterHeaders(letter.properties.headers.asJSON)
                }
            }
            #expect(consumer.isRunning, "the consumer keeps going after bad input")
        }
    }

    @Test func twoConsumerProcessesShareOneQueue() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let first = try stack.startConsumer(concurrency: 4)
            let second = try stack.startConsumer(concurrency: 4)
            try await stack.waitForConsumers(2)
            for index in 0..<200 {
                try await stack.publish(
                    commandBody(
                        id: stack.id("shared-\(index)"), type: "profile.upsert", accountID: account,
                        payload: ["profile": ["external_id": .string("ext-\(index)")]]),
                    routingKey: "profile.upsert", messageID: stack.id("shared-\(index)"))
            }
            try await stack.waitForCollected(200, timeout: .seconds(90))
            for index in 0..<200 { #expect(stack.results(for: stack.id("shared-\(index)")).count == 1) }
            let producers = Set(stack.deliveries.compactMap(\.properties.appID))
            #expect(producers.contains { $0.hasSuffix(":\(first.pid)") }, "first consumer produced results")
            #expect(producers.contains { $0.hasSuffix(":\(second.pid)") }, "second consumer produced results")
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/profiles")
            #expect(profiles["count"] == .int(200))
        }
    }
}

extension AMQPTable {
    /// The headers as JSON (strings, integers, booleans, nested), for contract validation.
    var asJSON: JSONValue {
        func convert(_ value: AMQPFieldValue) -> JSONValue {
            switch value {
            case .string(let text): return .string(text)
            case .bool(let flag): return .bool(flag)
            case .int(let number): return .int(number)
            case .double(let number): return .double(number)
            case .timestamp(let stamp): return .int(Int64(stamp))
            case .table(let table): return .object(table.mapValues(convert))
            case .array(let items): return .array(items.map(convert))
            case .bytes(let bytes): return .string(String(decoding: bytes, as: UTF8.self))
            case .void: return .null
            }
        }
        return .object(mapValues(convert))
    }
}
