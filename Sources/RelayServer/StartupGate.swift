import Synchronization

/// A start-up condition `/readyz` waits for besides the broker and Redis: `consume` in `RELAY_TOPOLOGY=policies`
/// mode is not ready while it checks that the topology's policies are in force (up to about 12 s), since it takes no
/// work then. Created closed with the name `/readyz` prints (`policies=checking`); ``open()`` once the condition holds.
public final class StartupGate: Sendable {
    /// The name of the condition in `/readyz`'s body.
    public let name: String
    private let isOpen = Mutex(false)

    /// A closed gate; `name` is what `/readyz` prints for it.
    public init(name: String) {
        self.name = name
    }

    /// Whether the condition holds.
    public var opened: Bool { isOpen.withLock { $0 } }

    /// Marks the condition as holding; `/readyz` no longer waits for it.
    public func open() {
        isOpen.withLock { $0 = true }
    }
}
