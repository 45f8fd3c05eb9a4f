import Testing

@testable import AMQP

@Suite("ConsumerSubscriptions: one consume in flight, cancels, channel closes, resubscribe")
struct ConsumerSubscriptionsTests {
    private func registration(_ tag: String, queue: String = "q", prefetch: UInt16 = 10) -> ConsumerRegistration {
        let (_, continuation) = AsyncThrowingStream.makeStream(of: AMQPDelivery.self, throwing: (any Error).self)
        return ConsumerRegistration(tag: tag, queue: queue, prefetch: prefetch, continuation: continuation)
    }

    @Test func consumesAreSentOneAtATimeInOrder() {
        var subscriptions = ConsumerSubscriptions()
        subscriptions.enqueue(registration("a", queue: "qa", prefetch: 5))
        subscriptions.enqueue(registration("b"))
        let first = subscriptions.nextToSend()
        #expect(first?.tag == "a" && first?.queue == "qa" && first?.prefetch == 5)
        #expect(subscriptions.inFlight == "a")
        let whileInFlight = subscriptions.nextToSend()
        #expect(whileInFlight == nil)  // a awaits its consume-ok
        subscriptions.consumeOK()
        let second = subscriptions.nextToSend()
        #expect(second?.tag == "b")
        subscriptions.consumeOK()
        let none = subscriptions.nextToSend()
        #expect(none == nil)
        #expect(subscriptions.isSubscribed("a") && subscriptions.isSubscribed("b"))
    }

    @Test func enqueueIgnoresATagAlreadySubscribed() {
        var subscriptions = ConsumerSubscriptions()
        let queued = subscriptions.enqueue(registration("a"))
        #expect(queued)
        let queued2 = subscriptions.enqueue(registration("a"))
        #expect(!queued2)
        #expect(subscriptions.waitingTags == ["a"])
    }

    @Test func resubscribeQueuesOnlyConsumersNotSubscribedYet() {
        var subscriptions = ConsumerSubscriptions()
        subscriptions.enqueue(registration("a"))
        subscriptions.resubscribe([registration("a"), registration("b"), registration("c")])
        #expect(subscriptions.waitingTags == ["a", "b", "c"])
    }

    @Test func cancellingAWaitingConsumerSendsNothing() {
        var subscriptions = ConsumerSubscriptions()
        subscriptions.enqueue(registration("a"))
        subscriptions.enqueue(registration("b"))
        _ = subscriptions.nextToSend()
        let mustSend = subscriptions.cancel("b")
        #expect(!mustSend)  // never sent: just dropped
        #expect(subscriptions.waitingTags.isEmpty)
        #expect(!subscriptions.isSubscribed("b"))
        let mustSend2 = subscriptions.cancel("a")
        #expect(mustSend2)  // sent (in flight): needs basic.cancel
        let mustSend3 = subscriptions.cancel("a")
        #expect(!mustSend3)  // only once
        let mustSend4 = subscriptions.cancel("unknown")
        #expect(!mustSend4)
    }

    @Test func brokerCancelForgetsTheTagSoItIsNotCancelledAgain() {
        var subscriptions = ConsumerSubscriptions()
        subscriptions.enqueue(registration("a"))
        _ = subscriptions.nextToSend()
        subscriptions.consumeOK()
        subscriptions.cancelledByBroker("a")
        #expect(!subscriptions.isSubscribed("a"))
        let mustSend = subscriptions.cancel("a")
        #expect(!mustSend)
    }

    @Test func channelClosedByAConsumeNamesTheInFlightConsumerAndForgetsAll() {
        var subscriptions = ConsumerSubscriptions()
        subscriptions.enqueue(registration("ok"))
        _ = subscriptions.nextToSend()
        subscriptions.consumeOK()
        subscriptions.enqueue(registration("missing-queue"))
        subscriptions.enqueue(registration("later"))
        _ = subscriptions.nextToSend()
        // channel.close caused by basic.consume (class 60, method 20): the in-flight consume is the culprit.
        let culprit = subscriptions.channelClosed(classID: 60, methodID: 20)
        #expect(culprit == "missing-queue")
        #expect(subscriptions.subscribed.isEmpty && subscriptions.inFlight == nil && subscriptions.waitingTags.isEmpty)
        // Everyone else is subscribed again on the reopened channel.
        subscriptions.resubscribe([registration("ok"), registration("later")])
        #expect(subscriptions.waitingTags == ["ok", "later"])
    }

    @Test func channelClosedByAnotherMethodBlamesNoConsumer() {
        var subscriptions = ConsumerSubscriptions()
        subscriptions.enqueue(registration("a"))
        _ = subscriptions.nextToSend()
        let culprit = subscriptions.channelClosed(classID: 60, methodID: 80)
        #expect(culprit == nil)  // e.g. a bad basic.ack
        #expect(subscriptions.subscribed.isEmpty)
        subscriptions.enqueue(registration("b"))
        _ = subscriptions.nextToSend()
        let culprit2 = subscriptions.channelClosed(classID: 60, methodID: 20)
        #expect(culprit2 == "b")
    }

    @Test func resetForgetsEverything() {
        var subscriptions = ConsumerSubscriptions()
        subscriptions.enqueue(registration("a"))
        subscriptions.enqueue(registration("b"))
        _ = subscriptions.nextToSend()
        subscriptions.reset()
        #expect(subscriptions.subscribed.isEmpty && subscriptions.inFlight == nil && subscriptions.waitingTags.isEmpty)
        let queued = subscriptions.enqueue(registration("a"))
        #expect(queued)
    }
}
