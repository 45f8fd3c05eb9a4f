import CRabbitMQ
import Glibc

/// A Linux eventfd used to wake the connection thread out of `poll()` when work is queued or a stop is requested.
///
/// Sendable: the descriptor is immutable and `write`/`read` on an eventfd are thread-safe syscalls.
final class EventFD: Sendable {
    let descriptor: Int32

    init() {
        descriptor = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        precondition(descriptor >= 0, "eventfd() failed: errno \(errno)")
    }

    deinit { close(descriptor) }

    /// Wakes the poller (idempotent until drained).
    func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(descriptor, $0.baseAddress, 8) }
    }

    /// Resets the counter after a wake-up.
    func drain() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { read(descriptor, $0.baseAddress, 8) }
    }
}
