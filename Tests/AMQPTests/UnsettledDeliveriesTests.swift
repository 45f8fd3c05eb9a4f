import Testing

@testable import AMQP

@Suite("UnsettledDeliveries: stale and double settlements are refused")
struct UnsettledDeliveriesTests {
    @Test func aDeliveryIsSettledOnce() {
        var deliveries = UnsettledDeliveries()
        deliveries.connected()
        let generation = deliveries.generation(of: .consumed)
        deliveries.record(1, from: .consumed)
        let verdict = deliveries.settle(1, generation: generation, from: .consumed)
        #expect(verdict == .send)
        let verdict2 = deliveries.settle(1, generation: generation, from: .consumed)
        #expect(verdict2 == .alreadySettled)
        let verdict3 = deliveries.settle(2, generation: generation, from: .consumed)
        #expect(verdict3 == .alreadySettled)
    }

    @Test func consumedAndFetchedTagsAreSeparate() {
        var deliveries = UnsettledDeliveries()
        deliveries.connected()
        deliveries.record(1, from: .fetched)
        let verdict = deliveries.settle(1, generation: deliveries.consumeGeneration, from: .consumed)
        #expect(verdict == .alreadySettled)
        let verdict2 = deliveries.settle(1, generation: deliveries.rpcGeneration, from: .fetched)
        #expect(verdict2 == .send)
    }

    @Test func aLostConnectionMakesEveryDeliveryStale() {
        var deliveries = UnsettledDeliveries()
        deliveries.connected()
        let consumed = deliveries.consumeGeneration
        let fetched = deliveries.rpcGeneration
        deliveries.record(1, from: .consumed)
        deliveries.record(2, from: .fetched)
        deliveries.connectionDropped()
        deliveries.connected()
        // Same tags on the new connection: still refused, the generation tells them apart.
        deliveries.record(1, from: .consumed)
        let verdict = deliveries.settle(1, generation: consumed, from: .consumed)
        #expect(verdict == .stale)
        let verdict2 = deliveries.settle(2, generation: fetched, from: .fetched)
        #expect(verdict2 == .stale)
        let verdict3 = deliveries.settle(1, generation: deliveries.consumeGeneration, from: .consumed)
        #expect(verdict3 == .send)
    }

    @Test func aReopenedChannelMakesOnlyItsDeliveriesStale() {
        var deliveries = UnsettledDeliveries()
        deliveries.connected()
        let consumed = deliveries.consumeGeneration
        let fetched = deliveries.rpcGeneration
        deliveries.record(1, from: .consumed)
        deliveries.record(2, from: .fetched)
        deliveries.channelReopened(.fetched)
        let verdict = deliveries.settle(2, generation: fetched, from: .fetched)
        #expect(verdict == .stale)
        let verdict2 = deliveries.settle(1, generation: consumed, from: .consumed)
        #expect(verdict2 == .send)
        deliveries.record(3, from: .consumed)
        deliveries.channelReopened(.consumed)
        let verdict3 = deliveries.settle(3, generation: consumed, from: .consumed)
        #expect(verdict3 == .stale)
        #expect(deliveries.consumeGeneration != deliveries.rpcGeneration)
    }
}
