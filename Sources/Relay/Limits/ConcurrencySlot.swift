import Synchronization

/// The consumer slot (one of `RELAY_CONCURRENCY`) a command is processed in, reachable from the code that
/// processes it through a task local.
///
/// A command that only waits for a shared call (an event in a batch waiting for Klaviyo's bulk allowance)
/// gives its slot back early with ``releaseEarly()``: the slot goes to the next delivery while the event's
/// delivery stays unacked (bounded by the queue's prefetch), so a batch can grow to Klaviyo's 1,000 events
/// per call instead of to the process's concurrency.
public final class ConcurrencySlot: Sendable {
    /// The slot of the command the current task processes (nil outside a consumer).
    @TaskLocal public static var current: ConcurrencySlot?

    let released = Atomic(false)
    let onRelease: @Sendable () -> Void

    /// Creates a slot that calls `onRelease` once, on the first release.
    public init(onRelease: @escaping @Sendable () -> Void) {
        self.onRelease = onRelease
    }

    /// Gives the slot back now (idempotent).
    public func releaseEarly() {
        release()
    }

    /// Gives the slot back unless it was already (idempotent): the consumer calls this when the command ends.
    public func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { onRelease() }
    }

    /// Whether the slot was given back.
    public var isReleased: Bool { released.load(ordering: .acquiring) }
}
