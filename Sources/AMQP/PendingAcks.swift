/// Acks of one channel waiting to be written together (the connection thread's batch), and how to write them
/// with the fewest frames.
///
/// `basic.ack` with `multiple` acknowledges every unacknowledged delivery up to its tag. Delivery tags grow on a
/// channel, so when every tag below the lowest still-unsettled one is either settled already or pending here,
/// one frame acknowledges all pending tags below it; pending tags above it (a slower command still holds an
/// older delivery) each need their own frame.
struct PendingAcks<Waiter> {
    /// What to write.
    struct Plan: Equatable {
        /// One `basic.ack` up to `tag` (`multiple` when it covers more than one pending ack).
        var multiple: (tag: UInt64, count: Int)?
        /// Tags acknowledged one by one.
        var single: [UInt64]

        static func == (lhs: Plan, rhs: Plan) -> Bool {
            lhs.multiple?.tag == rhs.multiple?.tag && lhs.multiple?.count == rhs.multiple?.count
                && lhs.single == rhs.single
        }
    }

    private var tags: [UInt64] = []
    private var waiters: [Waiter] = []

    var isEmpty: Bool { tags.isEmpty }

    /// Adds the ack of `tag` (already marked settled), whose caller `waiter` waits for it being written.
    mutating func append(_ tag: UInt64, _ waiter: Waiter) {
        tags.append(tag)
        waiters.append(waiter)
    }

    /// The frames for the pending tags, given the lowest tag still unsettled on the channel (nil: none).
    func plan(lowestUnsettled: UInt64?) -> Plan {
        var covered: [UInt64] = []
        var single: [UInt64] = []
        for tag in tags {
            if let floor = lowestUnsettled, tag > floor { single.append(tag) } else { covered.append(tag) }
        }
        return Plan(multiple: covered.max().map { ($0, covered.count) }, single: single.sorted())
    }

    /// Removes and returns the waiters (after writing, or to fail them).
    mutating func take() -> [Waiter] {
        defer {
            tags = []
            waiters = []
        }
        return waiters
    }
}
