import Testing

@testable import AMQP

@Suite("PendingAcks: acks written together, never acknowledging a delivery still held")
struct PendingAcksTests {
    @Test func acksBelowEveryUnsettledTagBecomeOneMultipleAck() {
        var acks = PendingAcks<Int>()
        for tag: UInt64 in [3, 1, 2] { acks.append(tag, Int(tag)) }
        let plan = acks.plan(lowestUnsettled: 7)
        #expect(plan.multiple?.tag == 3)
        #expect(plan.multiple?.count == 3)
        #expect(plan.single.isEmpty)
    }

    @Test func acksAboveAHeldDeliveryAreSentOneByOne() {
        var acks = PendingAcks<Int>()
        // Tag 4 is still held by a slow command: 1-3 may go as one frame, 5 and 6 must not sweep 4.
        for tag: UInt64 in [6, 1, 5, 2, 3] { acks.append(tag, Int(tag)) }
        let plan = acks.plan(lowestUnsettled: 4)
        #expect(plan.multiple?.tag == 3)
        #expect(plan.multiple?.count == 3)
        #expect(plan.single == [5, 6])
    }

    @Test func noneBelowTheHeldDeliveryMeansNoMultipleAck() {
        var acks = PendingAcks<Int>()
        acks.append(9, 9)
        let plan = acks.plan(lowestUnsettled: 2)
        #expect(plan.multiple == nil)
        #expect(plan.single == [9])
    }

    @Test func aLoneAckBelowTheFloorIsAPlainAck() {
        var acks = PendingAcks<Int>()
        acks.append(4, 4)
        let plan = acks.plan(lowestUnsettled: nil)
        #expect(plan.multiple?.tag == 4)
        #expect(plan.multiple?.count == 1)
    }

    @Test func takeHandsBackEveryWaiterOnceAndEmpties() {
        var acks = PendingAcks<String>()
        acks.append(1, "a")
        acks.append(2, "b")
        #expect(acks.take() == ["a", "b"])
        #expect(acks.isEmpty)
        #expect(acks.take().isEmpty)
    }
}
