import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// `connection.disconnect` has the same effect as the HTTP disconnect: secrets deleted, state disconnected,
/// `connection.disconnected` published; later commands of the account are dead-lettered `not_connected`.
@Suite("connection.disconnect command", .timeLimit(.minutes(2)))
struct DisconnectCommandTests {
    @Test func disconnectsAndLaterCommandsAreNotConnected() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let events = "\(stack.prefix).connection-events"
            var declaration = AMQPTopology()
            declaration.queues = [.init(name: events, durable: false, autoDelete: false)]
            declaration.bindings = [.init(queue: events, exchange: stack.topology.connectionsExchange, routingKey: "#")]
            try await stack.amqp.declare(declaration)
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1, queue: .campaigns)

            let disconnect = stack.id("disconnect")
            try await stack.publish(
                commandBody(
                    id: disconnect, type: "connection.disconnect", accountID: account,
                    payload: ["reason": "customer left"]),
                routingKey: "connection.disconnect", messageID: disconnect)
            try await stack.waitForCollected(1)
            let result = try #require(stack.results(for: disconnect).first)
            #expect(result.outcome == .succeeded)
            #expect(result.klaviyo?.data?["disconnected"] == true)
            let record = try await CredentialStore(redis: stack.redis, keys: stack.keys).load(accountID: account)
            #expect(record?.state == .disconnected)
            #expect(record?.apiKey == nil, "secrets are deleted")
            var event: AMQPDelivery?
            try await eventually("the connection.disconnected event", timeout: .seconds(10)) {
                event = try await stack.amqp.get(queue: events)
                return event != nil
            }
            #expect(event?.routingKey == "connection.disconnected")
            let body = try JSONValue.parse(try #require(event).body)
            #expect(body["account_id"]?.stringValue == account)

            let later = stack.id("after-disconnect")
            try await stack.publish(
                commandBody(
                    id: later, type: "profile.upsert", accountID: account,
                    payload: ["profile": ["email": "l@example.com"]]),
                routingKey: "profile.upsert", messageID: later)
            try await stack.waitForCollected(2)
            #expect(
                stack.deadLetters.first?.properties.headers[DeadLetter.Header.errorCode]?.stringValue == "not_connected"
            )
            try await stack.amqp.deleteQueue(events)
        }
    }
}
