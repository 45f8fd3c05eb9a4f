import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// One command's spans form one tree across a retry tier (issue #11), exported by a real `klaviyo-relay consume`
/// process over OTLP/HTTP (JSON) to ``OTLPSpanReceiver`` in this test: the publisher's `traceparent` is continued
/// by every delivery, each delivery's `relay.command` has its `relay.decode`, `relay.credential` and Klaviyo call
/// children, and the successful one publishes its result under it. Nested in ``RetryTierTests`` because
/// klaviyo-sim has one fault configuration: that suite's `.serialized` makes the tests that inject faults take
/// turns.
extension RetryTierTests {
    @Suite("Command traces across a retry tier", .timeLimit(.minutes(3)))
    struct CommandTraceTests {
        @Test func oneCommandsSpansFormOneTreeAcrossARetryTier() async throws {
            let receiver = OTLPSpanReceiver()
            try await receiver.start()
            do {
                try await withRelayStack { stack in try await Self.traceAcrossARetry(stack, receiver: receiver) }
            } catch {
                await receiver.stop()
                throw error
            }
            await receiver.stop()
        }

        static func traceAcrossARetry(_ stack: RelayStack, receiver: OTLPSpanReceiver) async throws {
            let (account, _) = try await stack.connectAccount()
            try await stack.setFaults([
                "error_rate": 1.0, "error_statuses": [503], "account_id": .string(account),
                "paths": ["/api/profile-import"],
            ])
            _ = try stack.startConsumer(environment: [
                "RELAY_RETRY_MAX_DELAY": "1s", "RELAY_RETRY_BASE_DELAY": "200ms", "RELAY_MAX_ATTEMPTS": "30",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                "OTEL_EXPORTER_OTLP_COMPRESSION": "none", "OTEL_BSP_SCHEDULE_DELAY": "100",
            ])
            try await stack.waitForConsumers(1)

            // The publisher's span: a fixed trace id, unique to this run in its span id.
            let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
            let publisherSpanID = String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(16))
            let command = upsert(stack, "traced-retry", account: account)
            try await stack.publish(
                command.body, routingKey: "profile.upsert", messageID: command.id,
                headers: [
                    "traceparent": .string("00-\(traceID)-\(publisherSpanID)-01"),
                    "tracestate": .string("relaytest=kept"),
                ])

            // The first call fails; the faults clear while the command waits in the 1 s tier.
            try await eventually("a 503 for the account", timeout: .seconds(30)) {
                try await stack.klaviyoStatuses(account: account).contains(503)
            }
            try await stack.clearFaults()
            try await stack.waitForCollected(1)
            let result = try #require(stack.results(for: command.id).first)
            #expect(result.outcome == .succeeded)
            let statuses = try await stack.klaviyoStatuses(account: account)
            let failures = statuses.filter { $0 == 503 }.count
            #expect(failures >= 1)
            #expect(statuses.filter { (200..<300).contains($0) }.count == 1)
            // Normally one: a second 503 only if the retry came back before the faults were cleared (a loaded
            // machine); the tree below is then checked for every failed delivery.

            // Every delivery's spans are exported once its relay.command span ended (children end first).
            try await eventually("\(failures + 1) relay.command spans exported", timeout: .seconds(30)) {
                receiver.spans(inTrace: traceID).filter { $0.name.hasPrefix("relay.command") }.count >= failures + 1
            }
            #expect(receiver.rejectedBodies.isEmpty, "bodies that are not OTLP JSON: \(receiver.rejectedBodies)")
            let spans = receiver.spans
            let trace = spans.filter { $0.traceID == traceID }
            let description = trace.map(\.description).joined(separator: "\n")
            #expect(
                spans.allSatisfy { $0.traceID == traceID },
                "every exported span is in the publisher's trace:\n\(description)"
            )
            #expect(Set(trace.map(\.spanID)).count == trace.count, "span ids are unique")

            let commands = trace.filter { $0.name.hasPrefix("relay.command") }.sorted {
                $0.startNanoseconds < $1.startNanoseconds
            }
            try #require(commands.count == failures + 1, "one relay.command per delivery:\n\(description)")
            for (index, span) in commands.enumerated() {
                let last = index == commands.count - 1
                #expect(span.parentSpanID == publisherSpanID, "\(span)")
                #expect(span.kind == OTLPSpanReceiver.Kind.consumer, "\(span)")
                #expect(span.traceState == "relaytest=kept", "tracestate carried through the tier: \(span)")
                #expect(span.name == "relay.command profile.upsert", "\(span)")
                #expect(span.attributes[CommandTracing.Attribute.commandID] == command.id, "\(span)")
                #expect(span.attributes[CommandTracing.Attribute.commandType] == "profile.upsert", "\(span)")
                #expect(
                    span.attributes[CommandTracing.Attribute.outcome] == (last ? "succeeded" : "retry_scheduled"),
                    "\(span)")
                if index > 0 {
                    #expect(span.attributes[CommandTracing.Attribute.attempts] == String(index), "\(span)")
                }

                let children = trace.filter { $0.parentSpanID == span.spanID }
                let names = children.map(\.name).sorted()
                let expected = [
                    "klaviyo.create_or_update_profile", "relay.credential", "relay.decode", "relay.publish",
                    "relay.rate_limit.wait",
                ]
                #expect(names == expected, "children of \(span):\n\(description)")
                // A failed delivery publishes the command to the 1 s tier, the last one its result.
                let publish = try #require(children.first { $0.name == "relay.publish" })
                #expect(publish.attributes[CommandTracing.Attribute.publishKind] == (last ? "result" : "retry"))
                #expect(
                    publish.attributes[CommandTracing.Attribute.routingKey]
                        == (last ? "profile.upsert.succeeded" : "1s"), "\(publish)")
                let call = try #require(children.first { $0.name == "klaviyo.create_or_update_profile" })
                #expect(call.kind == OTLPSpanReceiver.Kind.client, "\(call)")
                #expect(call.attributes["http.request.method"] == "POST", "\(call)")
                #expect(call.attributes["url.path"] == "/api/profile-import", "\(call)")
                let status = try #require(call.attributes["http.response.status_code"].flatMap { Int($0) }, "\(call)")
                if last {
                    #expect((200..<300).contains(status), "\(call)")
                    #expect(call.statusCode != 2, "\(call)")
                } else {
                    #expect(status == 503, "\(call)")
                    #expect(call.statusCode == 2, "a 503 is an error span: \(call)")
                }
                let credential = try #require(children.first { $0.name == "relay.credential" })
                #expect(credential.attributes[CommandTracing.Attribute.credentialMethod] == "api_key", "\(credential)")
                let decode = try #require(children.first { $0.name == "relay.decode" })
                #expect(decode.statusCode != 2, "\(decode)")
                // Decode, then credential, then the call.
                #expect(decode.startNanoseconds <= credential.startNanoseconds)
                #expect(credential.startNanoseconds <= call.startNanoseconds)
            }
        }
    }
}
