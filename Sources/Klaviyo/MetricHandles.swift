import Metrics
import Synchronization

/// The metric handles of one series, one per label combination, created on first use and kept.
///
/// Creating a swift-metrics handle asks the bootstrapped factory for it every time (swift-prometheus validates
/// the name, sorts and hashes the labels, and looks the series up under a lock): a few microseconds that the hot
/// path paid several times per command. Labels come from closed sets (operation ids, outcome words, command
/// types), so the cache stays small. Handles are created after `MetricsSystem.bootstrap`, which the CLI runs
/// before it starts any service.
package final class MetricHandles<Handle: Sendable>: Sendable {
    /// Up to two label values; a series with one label leaves `second` empty.
    package struct Labels: Hashable, Sendable {
        let first: String
        let second: String
    }

    private let handles = Mutex<[Labels: Handle]>([:])
    private let make: @Sendable (String, String) -> Handle

    /// A cache whose handles `make` creates from the label values.
    package init(_ make: @escaping @Sendable (_ first: String, _ second: String) -> Handle) {
        self.make = make
    }

    /// The handle for these label values.
    package subscript(_ first: String, _ second: String = "") -> Handle {
        let labels = Labels(first: first, second: second)
        if let handle = handles.withLock({ $0[labels] }) { return handle }
        let handle = make(first, second)
        // Two callers may race to create the same series: the factory hands both the same underlying series,
        // and the first one stored is kept.
        return handles.withLock { handles in
            if let stored = handles[labels] { return stored }
            handles[labels] = handle
            return handle
        }
    }
}
