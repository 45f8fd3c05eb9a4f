import Testing

@testable import AMQP

@Suite("PublisherConfirms: delivery tags, ack/nack, returns, failing on loss")
struct PublisherConfirmsTests {
    /// Waiters are plain strings here; the worker uses continuations.
    typealias Confirms = PublisherConfirms<String>

    private func outcomes(_ resolutions: [Confirms.Resolution]) -> [String] {
        resolutions.map { resolution in
            switch resolution.result {
            case .success: "\(resolution.waiter):ok"
            case .failure(let error): "\(resolution.waiter):\(error.code)"
            }
        }
    }

    @Test func tagsCountFromOneAndRestartAfterConfirmSelect() {
        var confirms = Confirms()
        let tag = confirms.register("a", exchange: "x", returnKey: nil)
        #expect(tag == 1)
        let tag2 = confirms.register("b", exchange: "x", returnKey: nil)
        #expect(tag2 == 2)
        #expect(confirms.count == 2)
        _ = confirms.failAll { _ in AMQPError(code: .channelClosed, message: "closed") }
        confirms.restartNumbering()
        let tag3 = confirms.register("c", exchange: "x", returnKey: nil)
        #expect(tag3 == 1)
    }

    @Test func singleAckSettlesOnlyItsTag() {
        var confirms = Confirms()
        for name in ["a", "b", "c"] { confirms.register(name, exchange: "x", returnKey: nil) }
        let settled = confirms.confirm(upTo: 2, multiple: false, nacked: false)
        #expect(outcomes(settled) == ["b:ok"])
        #expect(confirms.count == 2)
        let settled2 = confirms.confirm(upTo: 2, multiple: false, nacked: false)
        #expect(outcomes(settled2) == [])
    }

    @Test func multipleAckSettlesEveryEarlierTagInOrder() {
        var confirms = Confirms()
        for name in ["a", "b", "c", "d"] { confirms.register(name, exchange: "x", returnKey: nil) }
        _ = confirms.confirm(upTo: 2, multiple: false, nacked: false)
        let settled = confirms.confirm(upTo: 3, multiple: true, nacked: false)
        #expect(outcomes(settled) == ["a:ok", "c:ok"])
        let settled2 = confirms.confirm(upTo: 4, multiple: true, nacked: false)
        #expect(outcomes(settled2) == ["d:ok"])
        #expect(confirms.isEmpty)
        // A repeated or stale multiple ack settles nothing.
        let settled3 = confirms.confirm(upTo: 4, multiple: true, nacked: false)
        #expect(outcomes(settled3) == [])
    }

    @Test func multipleNackFailsRetriably() throws {
        var confirms = Confirms()
        for name in ["a", "b"] { confirms.register(name, exchange: "x", returnKey: nil) }
        let resolutions = confirms.confirm(upTo: 2, multiple: true, nacked: true)
        #expect(outcomes(resolutions) == ["a:publishNacked", "b:publishNacked"])
        guard case .failure(let error) = try #require(resolutions.first).result else {
            Issue.record("a nacked publish succeeded")
            return
        }
        #expect(error.isRetriable)
    }

    @Test func returnedMandatoryPublishFailsUnroutableOnItsAck() {
        var confirms = Confirms()
        let key = Confirms.ReturnKey(routingKey: "rk", body: [1, 2])
        confirms.register("plain", exchange: "x", returnKey: nil)
        confirms.register("first", exchange: "x", returnKey: key)
        confirms.register("second", exchange: "x", returnKey: key)
        let matched = confirms.markReturned(
            exchange: "x", routingKey: "rk", body: [1, 2], replyCode: 312, replyText: "NO_ROUTE")
        #expect(
            matched)
        // The oldest match is marked; the broker acks returned messages, the publish still fails.
        let settled = confirms.confirm(upTo: 3, multiple: true, nacked: false)
        #expect(
            outcomes(settled)
                == ["plain:ok", "first:unroutable", "second:ok"])
    }

    @Test func returnCarriesTheBrokersReplyAndIsNotRetriable() throws {
        var confirms = Confirms()
        confirms.register("a", exchange: "x", returnKey: .init(routingKey: "rk", body: [7]))
        _ = confirms.markReturned(exchange: "x", routingKey: "rk", body: [7], replyCode: 312, replyText: "NO_ROUTE")
        let settled = confirms.confirm(upTo: 1, multiple: false, nacked: false)
        let resolution = try #require(settled.first)
        guard case .failure(let error) = resolution.result else {
            Issue.record("a returned publish succeeded")
            return
        }
        #expect(error.replyCode == 312)
        #expect(!error.isRetriable)
        #expect(error.message.contains("NO_ROUTE"))
    }

    @Test func returnMatchesNothingForOtherKeysBodiesOrNonMandatoryPublishes() {
        var confirms = Confirms()
        confirms.register("plain", exchange: "x", returnKey: nil)
        confirms.register("mandatory", exchange: "x", returnKey: .init(routingKey: "rk", body: [1]))
        let matched = confirms.markReturned(exchange: "y", routingKey: "rk", body: [1], replyCode: 312, replyText: "")
        #expect(!matched)
        let matched2 = confirms.markReturned(
            exchange: "x", routingKey: "other", body: [1], replyCode: 312, replyText: "")
        #expect(!matched2)
        let matched3 = confirms.markReturned(exchange: "x", routingKey: "rk", body: [2], replyCode: 312, replyText: "")
        #expect(!matched3)
        let settled = confirms.confirm(upTo: 2, multiple: true, nacked: false)
        #expect(outcomes(settled) == ["plain:ok", "mandatory:ok"])
    }

    @Test func failAllFailsEveryOutstandingPublishInTagOrderAndSkipsTheirTags() {
        var confirms = Confirms()
        for name in ["a", "b", "c"] { confirms.register(name, exchange: name == "b" ? "missing" : "x", returnKey: nil) }
        let failed = confirms.failAll { exchange in
            AMQPError(code: exchange == "missing" ? .channelClosed : .connectionLost, message: "gone")
        }
        #expect(outcomes(failed) == ["a:connectionLost", "b:channelClosed", "c:connectionLost"])
        #expect(confirms.isEmpty)
        // Tags keep counting on the same channel; a late ack for a failed tag settles nothing.
        let tag = confirms.register("d", exchange: "x", returnKey: nil)
        #expect(tag == 4)
        let settled = confirms.confirm(upTo: 4, multiple: true, nacked: false)
        #expect(outcomes(settled) == ["d:ok"])
    }
}
