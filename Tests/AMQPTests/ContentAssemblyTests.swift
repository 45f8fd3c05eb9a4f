import Testing

@testable import AMQP

@Suite("ContentAssembly: method + header + body frames into one message")
struct ContentAssemblyTests {
    private let deliver = ContentAssembly.Method.deliver(
        consumerTag: "ctag", deliveryTag: 9, redelivered: true, exchange: "ex", routingKey: "rk")

    /// Feeds one body frame with these bytes.
    private func body(
        _ assembly: inout ContentAssembly, channel: UInt16, _ bytes: [UInt8]
    ) throws -> ContentAssembly.Content? {
        try bytes.withUnsafeBytes { try assembly.body(channel: channel, fragment: $0) }
    }

    @Test func bodyInSeveralFramesCompletesAtTheAnnouncedSize() throws {
        var assembly = ContentAssembly()
        var properties = AMQPProperties()
        properties.messageID = "m-1"
        assembly.begin(deliver, channel: 1)
        let afterHeader = try assembly.header(channel: 1, properties: properties, bodySize: 5)
        let afterFirst = try body(&assembly, channel: 1, [1, 2])
        let afterSecond = try body(&assembly, channel: 1, [3])
        let afterThird = try body(&assembly, channel: 1, [4, 5])
        #expect(afterHeader == nil && afterFirst == nil && afterSecond == nil)
        #expect(afterThird == .init(method: deliver, properties: properties, body: [1, 2, 3, 4, 5]))
        #expect(!assembly.isAssembling(channel: 1))
    }

    @Test func emptyBodyCompletesWithTheHeader() throws {
        var assembly = ContentAssembly()
        let returned = ContentAssembly.Method.returned(
            replyCode: 312, replyText: "NO_ROUTE", exchange: "ex", routingKey: "rk")
        assembly.begin(returned, channel: 2)
        let completed = try assembly.header(channel: 2, properties: nil, bodySize: 0)
        let content = try #require(completed)
        #expect(content.method == returned)
        #expect(content.body.isEmpty)
        #expect(content.properties == AMQPProperties())
        #expect(!assembly.isAssembling(channel: 2))
    }

    @Test func channelsAssembleIndependently() throws {
        var assembly = ContentAssembly()
        let returned = ContentAssembly.Method.returned(replyCode: 312, replyText: "", exchange: "e", routingKey: "r")
        assembly.begin(deliver, channel: 1)
        assembly.begin(returned, channel: 2)
        _ = try assembly.header(channel: 1, properties: nil, bodySize: 2)
        _ = try assembly.header(channel: 2, properties: nil, bodySize: 1)
        let firstOnOne = try body(&assembly, channel: 1, [1])
        let onlyOnTwo = try body(&assembly, channel: 2, [9])
        let secondOnOne = try body(&assembly, channel: 1, [2])
        #expect(firstOnOne == nil)
        #expect(onlyOnTwo?.method == returned && onlyOnTwo?.body == [9])
        #expect(secondOnOne?.method == deliver && secondOnOne?.body == [1, 2])
    }

    @Test func headerWithoutAMethodOrTwiceIsAProtocolError() throws {
        var assembly = ContentAssembly()
        let error = #expect(throws: AMQPError.self) { try assembly.header(channel: 1, properties: nil, bodySize: 1) }
        #expect(error?.code == .protocolError)
        #expect(error?.message == "unexpected content header on channel 1")
        assembly.begin(deliver, channel: 1)
        _ = try assembly.header(channel: 1, properties: nil, bodySize: 3)
        #expect(throws: AMQPError.self) { try assembly.header(channel: 1, properties: nil, bodySize: 3) }
    }

    @Test func bodyBeforeItsHeaderIsAProtocolError() {
        var assembly = ContentAssembly()
        #expect(throws: AMQPError.self) { try body(&assembly, channel: 1, [1]) }
        assembly.begin(deliver, channel: 1)
        let error = #expect(throws: AMQPError.self) { try body(&assembly, channel: 1, [1]) }
        #expect(error?.code == .protocolError)
        #expect(error?.message == "unexpected content body on channel 1")
    }

    @Test func discardAndResetDropPartialMessages() throws {
        var assembly = ContentAssembly()
        assembly.begin(deliver, channel: 1)
        assembly.begin(deliver, channel: 3)
        _ = try assembly.header(channel: 1, properties: nil, bodySize: 4)
        assembly.discard(channel: 1)
        #expect(!assembly.isAssembling(channel: 1))
        #expect(assembly.isAssembling(channel: 3))
        #expect(throws: AMQPError.self) { try body(&assembly, channel: 1, [1]) }
        assembly.reset()
        #expect(!assembly.isAssembling(channel: 3))
    }
}
