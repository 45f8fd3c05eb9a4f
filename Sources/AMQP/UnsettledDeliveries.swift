/// Which deliveries can still be acknowledged: the generation of the consume and RPC channels' current
/// incarnations, and the delivery tags handed out on each and not settled yet.
///
/// A delivery carries the generation it arrived in; once its channel or connection is gone it is stale (the broker
/// redelivers it), and settling it twice is refused before anything reaches the broker.
struct UnsettledDeliveries {
    /// Where a delivery came from: a consumer (consume channel) or `basic.get` (RPC channel).
    enum Source {
        case consumed
        case fetched
    }

    /// Whether a settlement may go to the broker.
    enum Verdict: Equatable {
        /// Send it (the tag is no longer unsettled).
        case send
        /// The delivery came from an earlier connection or channel.
        case stale
        /// The delivery was settled before.
        case alreadySettled
    }

    private var counter: UInt64 = 0
    /// The generation of the consume channel's current incarnation.
    private(set) var consumeGeneration: UInt64 = 0
    /// The generation of the RPC channel's current incarnation.
    private(set) var rpcGeneration: UInt64 = 0
    private var consumed: Set<UInt64> = []
    private var fetched: Set<UInt64> = []

    /// The generation a new delivery from `source` belongs to.
    func generation(of source: Source) -> UInt64 {
        source == .consumed ? consumeGeneration : rpcGeneration
    }

    /// A fresh connection opened both channels: new generations.
    mutating func connected() {
        counter += 1
        consumeGeneration = counter
        rpcGeneration = counter
    }

    /// The connection is gone: every delivery handed out so far is stale.
    mutating func connectionDropped() {
        counter += 1
        consumeGeneration = counter
        rpcGeneration = counter
        consumed = []
        fetched = []
    }

    /// The consume or RPC channel was reopened: deliveries from its earlier incarnation are stale.
    mutating func channelReopened(_ source: Source) {
        counter += 1
        switch source {
        case .consumed:
            consumeGeneration = counter
            consumed = []
        case .fetched:
            rpcGeneration = counter
            fetched = []
        }
    }

    /// A delivery with `tag` was handed to the application.
    mutating func record(_ tag: UInt64, from source: Source) {
        switch source {
        case .consumed: consumed.insert(tag)
        case .fetched: fetched.insert(tag)
        }
    }

    /// Decides whether the delivery `tag` of `generation` may be settled now; `.send` marks it settled.
    mutating func settle(_ tag: UInt64, generation: UInt64, from source: Source) -> Verdict {
        guard generation == self.generation(of: source) else { return .stale }
        switch source {
        case .consumed: return consumed.remove(tag) == nil ? .alreadySettled : .send
        case .fetched: return fetched.remove(tag) == nil ? .alreadySettled : .send
        }
    }

    /// The lowest tag from `source` handed out and not settled yet (nil: none).
    func lowestUnsettled(_ source: Source) -> UInt64? {
        source == .consumed ? consumed.min() : fetched.min()
    }
}
