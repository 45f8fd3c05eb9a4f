import AMQP
import Logging
import Metrics
import Synchronization

/// Keeps one account's backlog from delaying the other accounts that share a process's work queues (issue #8
/// item 4; docs/operations.md, "Fairness").
///
/// Every delivery is attributed to its account (the body's top-level `account_id`) before it takes a consumer
/// slot. An account may hold `hotSlots` (= concurrency × `RELAY_FAIR_SHARE`) slots; a further delivery of an
/// account at its share is not processed now but packed with the account's other such deliveries into one
/// ``DeliveryBundle`` parked in the shortest retry tier (one publish for up to ``Settings/maxMembers``
/// deliveries and ``Settings/maxBytes``, each acked once the broker confirmed the bundle). The consumer so
/// reaches the deliveries of other accounts behind the backlog at the pace of acks, not of Klaviyo calls.
///
/// A returning bundle is unpacked in the account's lane: its members are processed in order like the deliveries
/// they were, at most ``Settings/laneSlots`` at once, and the bundle is acked when every member was acked. A lane
/// queue holds up to ``Settings/maxWaitingBundles`` bundles and ``Settings/maxWaitingMembers`` members (all lanes);
/// more are parked again. A bundle the broker delivers again (a
/// consumer died while unpacking it) is dissolved: each member is parked on its own, sealed as possibly sent
/// (`x-relay-redelivered`), and the members already done end as duplicates through their done markers.
///
/// The events queue counts differently: a batched event gives its consumer slot back while it waits for the
/// shared bulk call, so there an account holds what it has in flight (processing or waiting in the batcher) until
/// its command finishes, up to ``Settings/eventHotSlots`` (one full bulk call, half the events queue's extra
/// prefetch), and its members in a lane give their lane share back with their slot, so a lane keeps the
/// batcher's calls full.
///
/// Exempt: the unroutable queue, and commands that come back to a rate-limiter slot they reserved
/// (`x-relay-slot`), which must be on time.
final class AccountFairness: Sendable {
    /// The knobs.
    struct Settings: Sendable {
        /// Slots one account may hold before its further deliveries are bundled (0: fairness off).
        var hotSlots: Int
        /// Events one account may have in flight in the events queue (processing or waiting for a bulk call)
        /// before its further events are bundled: half of what the events queue's prefetch holds beyond the
        /// others' (``EventBatcher/extraPrefetch`` with batching on: one full bulk call), at least ``hotSlots``.
        /// The other half keeps the consumer moving through a hot backlog to the other accounts' events
        /// (`scripts/bench/allowance.sh --scenario fair-events`: with all of it, the others' p99 was 5.4 s
        /// instead of 2.3 s).
        var eventHotSlots: Int
        /// Most deliveries in one bundle: half of what the prefetch leaves beyond the concurrency, so bundling
        /// never waits for deliveries the broker will not send.
        var maxMembers: Int
        /// How long a bundle stays open for more members.
        var flushAfter: Duration = .milliseconds(20)
        /// Bundles waiting in the lanes (beyond the ones being unpacked), all accounts together: half the prefetch,
        /// so the other half always takes deliveries of other accounts. More are parked again, in the second tier
        /// (5 s): a lane holds several seconds of work, and a backlog of bundles does not circle through the
        /// broker every second.
        var maxWaitingBundles: Int
        /// Members one lane processes at once: all slots but one account's share, so a lone account keeps most
        /// of the process busy while at least `hotSlots` slots stay free for the others.
        var laneSlots: Int

        init(concurrency: Int, fairShare: Double, prefetch: Int, eventsPrefetch: Int? = nil) {
            hotSlots = fairShare > 0 ? max(1, Int((Double(concurrency) * fairShare).rounded(.down))) : 0
            eventHotSlots = hotSlots > 0 ? max(hotSlots, ((eventsPrefetch ?? prefetch) - prefetch) / 2) : 0
            maxMembers = min(1000, max(8, (prefetch - concurrency) / 2))
            laneSlots = max(hotSlots, concurrency - hotSlots)
            maxWaitingBundles = max(1, prefetch / 2)
        }

        /// Members waiting in the lanes, all accounts together (about 10 MB of commands).
        var maxWaitingMembers = 20_000

        /// Most bytes of one bundle's body: a bundle is one message, and the broker refuses a message over its
        /// `max_message_size` (RabbitMQ's default: 128 MiB in 3.x, 16 MiB from 4.0) and closes the publish channel.
        /// `maxMembers` deliveries of up to `RELAY_MAX_MESSAGE_BYTES` each can be far more, so the members of a
        /// flush go in as many bundles as this takes; a member larger than this alone goes in a bundle of its own
        /// (the size of the message the broker already took, plus its properties).
        var maxBytes = 8 * 1024 * 1024
    }

    /// What to do with a delivery.
    enum Route {
        /// Process it now (with the account it counts against, if any).
        case process(account: String?)
        /// Add it to the account's open bundle.
        case bundle(account: String)
        /// A returning bundle: unpack it in the account's lane.
        case unpack(DeliveryBundle, account: String)
        /// A bundle delivered again: park each member on its own.
        case dissolve(DeliveryBundle)
    }

    struct BufferKey: Hashable {
        var account: String
        var queue: String
    }

    struct Buffer {
        var generation: Int
        var deliveries: [AMQPDelivery]
        /// Each member's ``DeliveryBundle/Member/encodedSize``, in order (the flush splits by them).
        var sizes: [Int]
        /// Their sum.
        var bytes: Int
    }

    struct Lane {
        var bundles: [(delivery: AMQPDelivery, bundle: DeliveryBundle)] = []
    }

    /// What an account holds: slots in the other queues, or events in flight in the events queue.
    struct Hold: Hashable {
        var account: String
        var events: Bool
    }

    struct State {
        var held: [Hold: Int] = [:]
        var buffers: [BufferKey: Buffer] = [:]
        var nextGeneration = 0
        var lanes: [String: Lane] = [:]
        var waitingBundles = 0
        var waitingMembers = 0
    }

    let settings: Settings
    let amqp: AMQPClient
    let topology: RelayTopology
    let seal: HeaderSeal
    let logger: Logger
    let state = Mutex(State())
    /// Set on graceful shutdown: lanes start no more members.
    let stopping = Atomic(false)

    init(settings: Settings, amqp: AMQPClient, topology: RelayTopology, seal: HeaderSeal, logger: Logger) {
        self.settings = settings
        self.amqp = amqp
        self.topology = topology
        self.seal = seal
        self.logger = logger
    }

    var isEnabled: Bool { settings.hotSlots > 0 }

    // MARK: Routing

    /// Where a delivery from the broker goes. A delivery routed to `.process(account:)` with an account counts
    /// against it until ``released(account:events:)``.
    func route(_ delivery: AMQPDelivery) -> Route {
        guard delivery.queue != topology.queueName(.unroutable) else { return .process(account: nil) }
        let headers = delivery.properties.headers
        if headers[DeliveryBundle.header] != nil, seal.verify(headers, body: delivery.body) {
            do {
                let bundle = try DeliveryBundle(decoding: delivery.body)
                if delivery.redelivered { return .dissolve(bundle) }
                let account = bundle.members.first.flatMap { DeliveryBundle.accountID(of: $0.body) } ?? ""
                return .unpack(bundle, account: account)
            } catch {
                // Sealed by the relay yet unreadable: processed as a command, which dead-letters it as it is.
                logger.error("bundle unreadable", metadata: [LogKeys.errorDetail: "\(error)"])
                return .process(account: nil)
            }
        }
        guard isEnabled, let account = DeliveryBundle.accountID(of: delivery.body) else {
            return .process(account: nil)
        }
        let events = isEvents(delivery)
        let hold = Hold(account: account, events: events)
        let limit = events ? settings.eventHotSlots : settings.hotSlots
        let held = state.withLock { state -> Int in
            let held = state.held[hold, default: 0]
            if held < limit { state.held[hold] = held + 1 }
            return held
        }
        guard held >= limit else { return .process(account: account) }
        if headers[DelayedRetry.Header.slot] != nil, seal.verify(headers, body: delivery.body) {
            claim(account, events: events)
            return .process(account: account)
        }
        // A bundle goes back through the commands exchange by its first member's route, so only a delivery whose
        // route leads back to its own queue joins one; one published straight to the queue (default exchange)
        // or carried there by a `CC` key is processed as it came.
        let route = DelayedRetry.originalRoutingKey(of: delivery, seal: seal)
        guard let queue = RelayQueue.routing(route), topology.queueName(queue) == delivery.queue else {
            claim(account, events: events)
            return .process(account: account)
        }
        return .bundle(account: account)
    }

    /// Whether a delivery (or a bundle member, which carries its carrier's queue) is from the events queue.
    func isEvents(_ delivery: AMQPDelivery) -> Bool { delivery.queue == topology.queueName(.events) }

    /// Counts a slot (an event in flight, for `events`) against `account`.
    func claim(_ account: String, events: Bool = false) {
        state.withLock { $0.held[Hold(account: account, events: events), default: 0] += 1 }
    }

    /// The account gave a slot back (an event of it finished, for `events`).
    func released(account: String, events: Bool = false) {
        let hold = Hold(account: account, events: events)
        state.withLock { state in
            let held = state.held[hold, default: 0] - 1
            state.held[hold] = held > 0 ? held : nil
        }
    }

    // MARK: Bundling

    /// Adds a delivery to its account's open bundle. Returns the bundle to flush now (full), or the generation
    /// of a newly opened one, whose flush the caller schedules after ``Settings/flushAfter``.
    enum Added {
        case full(BufferKey, Int)
        case opened(BufferKey, Int)
        case joined
    }

    func add(_ delivery: AMQPDelivery, account: String) -> Added {
        let key = BufferKey(account: account, queue: delivery.queue)
        let size = DeliveryBundle.Member(delivery).encodedSize
        return state.withLock { state -> Added in
            if var buffer = state.buffers[key] {
                buffer.deliveries.append(delivery)
                buffer.sizes.append(size)
                buffer.bytes += size
                state.buffers[key] = buffer
                return isFull(buffer) ? .full(key, buffer.generation) : .joined
            }
            state.nextGeneration += 1
            let buffer = Buffer(generation: state.nextGeneration, deliveries: [delivery], sizes: [size], bytes: size)
            state.buffers[key] = buffer
            return isFull(buffer) ? .full(key, buffer.generation) : .opened(key, buffer.generation)
        }
    }

    /// Whether an open bundle takes no more members (``Settings/maxMembers``, ``Settings/maxBytes``).
    func isFull(_ buffer: Buffer) -> Bool {
        buffer.deliveries.count >= settings.maxMembers || buffer.bytes >= settings.maxBytes
    }

    /// The runs of `sizes` (members' encoded sizes, in order) that each fit one bundle of at most `maxBytes`; a
    /// member larger than that alone makes a run of its own.
    static func slices(_ sizes: [Int], maxBytes: Int) -> [Range<Int>] {
        var slices: [Range<Int>] = []
        var start = 0
        var bytes = 0
        for (index, size) in sizes.enumerated() {
            if index > start, bytes + size > maxBytes {
                slices.append(start..<index)
                start = index
                bytes = 0
            }
            bytes += size
        }
        if start < sizes.count { slices.append(start..<sizes.count) }
        return slices
    }

    /// Publishes the open bundle `generation` of `key` (if it is still open) and acks its members once the
    /// broker confirmed it; if the publish fails they are requeued.
    func flush(_ key: BufferKey, generation: Int) async {
        let buffer = state.withLock { state -> Buffer? in
            guard let buffer = state.buffers[key], buffer.generation == generation else { return nil }
            state.buffers[key] = nil
            return buffer
        }
        if let buffer { await publish(buffer) }
    }

    /// Publishes every open bundle (graceful shutdown).
    func flushAll() async {
        let all = state.withLock { state -> [Buffer] in
            defer { state.buffers = [:] }
            return Array(state.buffers.values)
        }
        for buffer in all { await publish(buffer) }
    }

    /// Parks an open bundle's members in as few bundles as ``Settings/maxBytes`` allows, each acked or requeued on
    /// its own.
    func publish(_ buffer: Buffer) async {
        for slice in Self.slices(buffer.sizes, maxBytes: settings.maxBytes - Self.bundleOverhead) {
            await publishBundle(Array(buffer.deliveries[slice]))
        }
    }

    /// The bytes of a bundle body besides its members (magic and member count).
    static let bundleOverhead = 8

    func publishBundle(_ deliveries: [AMQPDelivery]) async {
        guard let first = deliveries.first, let tier = topology.retryTiers.first else { return }
        let bundle = DeliveryBundle(members: deliveries.map(DeliveryBundle.Member.init))
        let route = DelayedRetry.originalRoutingKey(of: first, seal: seal)
        do {
            try await amqp.publish(bundleMessage(bundle.encoded(), count: deliveries.count, route: route, tier: tier))
        } catch {
            logger.warning(
                "could not park a bundle; its commands are requeued",
                metadata: [LogKeys.errorDetail: "\(error)", "members": "\(deliveries.count)"])
            // After the hand-back delay: requeued at once, they would be bundled and refused again at once, each
            // round counting toward the delivery limit.
            if !Task.isCancelled { try? await Task.sleep(for: ConsumerService.handBackDelay) }
            for delivery in deliveries { try? await amqp.nack(delivery, requeue: true) }
            return
        }
        logger.debug(
            "bundle parked",
            metadata: [
                LogKeys.accountID: "\(DeliveryBundle.accountID(of: first.body) ?? "")",
                "members": "\(deliveries.count)",
            ])
        Counter(label: "relay_fairness_bundles_total", dimensions: [("event", "parked")]).increment()
        Counter(label: "relay_fairness_bundled_total").increment(by: deliveries.count)
        // Submitted together, the acks leave as one `basic.ack` with `multiple` where their tags allow.
        await withDiscardingTaskGroup { group in
            for delivery in deliveries { group.addTask { try? await self.amqp.ack(delivery) } }
        }
    }

    func bundleMessage(_ body: [UInt8], count: Int, route: String, tier: RelayTopology.RetryTier) -> AMQPMessage {
        var headers: AMQPTable = [
            DeliveryBundle.header: .int(Int64(count)),
            DelayedRetry.Header.cc: .array([.string(route)]),
            DeadLetter.Header.originalRoutingKey: .string(route),
            DeadLetter.Header.originalExchange: .string(topology.commandsExchange),
        ]
        seal.seal(&headers, body: body)
        return AMQPMessage(
            exchange: topology.retryExchange, routingKey: tier.name, body: body,
            properties: AMQPProperties(
                contentType: "application/vnd.klaviyo-relay.bundle", headers: headers, persistent: true),
            mandatory: true)
    }

    // MARK: Unpacking

    /// Admits a returning bundle to its account's lane. `.start`: no lane ran, the caller runs ``runLane(_:)``;
    /// `.queued`: the running lane takes it; `.full`: park it again (``repark(_:_:)``).
    enum Admission {
        case start
        case queued
        case full
    }

    func admit(_ delivery: AMQPDelivery, _ bundle: DeliveryBundle, account: String) -> Admission {
        state.withLock { state -> Admission in
            guard state.waitingBundles < settings.maxWaitingBundles,
                state.waitingMembers + bundle.members.count <= settings.maxWaitingMembers || state.waitingBundles == 0
            else { return .full }
            state.waitingBundles += 1
            state.waitingMembers += bundle.members.count
            if var lane = state.lanes[account] {
                lane.bundles.append((delivery, bundle))
                state.lanes[account] = lane
                return .queued
            }
            var lane = Lane()
            lane.bundles.append((delivery, bundle))
            state.lanes[account] = lane
            return .start
        }
    }

    /// The next bundle of a lane, or nil when it has none left (the lane is then closed, atomically with the
    /// check).
    func nextBundle(of account: String) -> (delivery: AMQPDelivery, bundle: DeliveryBundle)? {
        state.withLock { state in
            guard var lane = state.lanes[account] else { return nil }
            guard !lane.bundles.isEmpty else {
                // Closed now: a bundle arriving while the last members finish opens a new lane.
                state.lanes[account] = nil
                return nil
            }
            let next = lane.bundles.removeFirst()
            state.lanes[account] = lane
            state.waitingBundles -= 1
            state.waitingMembers -= next.bundle.members.count
            return next
        }
    }

    /// Closes a lane whose task ends (whatever it still holds stays unacked and comes back from the broker).
    func closeLane(_ account: String) {
        state.withLock { state in
            let dropped = state.lanes.removeValue(forKey: account)?.bundles ?? []
            state.waitingBundles -= dropped.count
            state.waitingMembers -= dropped.reduce(0) { $0 + $1.bundle.members.count }
        }
    }

    /// Parks a bundle again in the second tier (the lanes hold enough), then acks it.
    func repark(_ delivery: AMQPDelivery, _ bundle: DeliveryBundle) async {
        guard let tier = topology.retryTiers.dropFirst().first ?? topology.retryTiers.first else { return }
        let route = DelayedRetry.originalRoutingKey(of: delivery, seal: seal)
        do {
            try await amqp.publish(bundleMessage(delivery.body, count: bundle.members.count, route: route, tier: tier))
            try await amqp.ack(delivery)
            Counter(label: "relay_fairness_bundles_total", dimensions: [("event", "reparked")]).increment()
        } catch {
            logger.warning(
                "could not park a bundle again; it is requeued",
                metadata: [
                    LogKeys.errorDetail: "\(error)"
                ])
            // Left unacked on a live channel it would hold a prefetch slot until the connection closes.
            await ConsumerService.handBack(delivery, amqp: amqp, logger: logger)
        }
    }

    /// The deliveries a bundle carried, as the processor sees them; settling one records it in its settlement.
    func members(of delivery: AMQPDelivery, _ bundle: DeliveryBundle) -> [AMQPDelivery] {
        bundle.members.map { member in
            AMQPDelivery.unpacked(
                body: member.body, properties: member.properties, exchange: member.exchange,
                routingKey: member.routingKey, redelivered: member.redelivered, queue: delivery.queue,
                consumerTag: delivery.consumerTag, settlement: AMQPLocalSettlement())
        }
    }

    /// A bundle the broker delivered again: each member parked on its own in the shortest tier, sealed as
    /// possibly sent, then the bundle acked. If a publish fails the bundle stays unacked (the broker delivers
    /// it again; members parked twice end as duplicates).
    func dissolve(_ delivery: AMQPDelivery, _ bundle: DeliveryBundle) async {
        guard let tier = topology.retryTiers.first else { return }
        logger.info(
            "bundle delivered again: its commands are parked one by one",
            metadata: [
                "members": "\(bundle.members.count)"
            ])
        do {
            try await withThrowingDiscardingTaskGroup { group in
                for member in members(of: delivery, bundle) {
                    let route = DelayedRetry.originalRoutingKey(of: member, seal: seal)
                    let message = DelayedRetry.parked(
                        member, topology: topology, tier: tier, routingKey: route, seal: seal
                    ) { headers in
                        headers[DeliveryBundle.redeliveredHeader] = .int(1)
                    }
                    group.addTask { try await self.amqp.publish(message) }
                }
            }
            try await amqp.ack(delivery)
            Counter(label: "relay_fairness_bundles_total", dimensions: [("event", "dissolved")]).increment()
        } catch {
            logger.warning(
                "could not dissolve a bundle; it is requeued",
                metadata: [
                    LogKeys.errorDetail: "\(error)"
                ])
            // Requeued, it comes back redelivered and is dissolved again (members parked twice end as duplicates).
            await ConsumerService.handBack(delivery, amqp: amqp, logger: logger)
        }
    }
}

/// Whether every member of a bundle was acked, counted as they finish; the last one to finish decides.
final class BundleProgress: Sendable {
    let remaining: Atomic<Int>
    let allAcked = Atomic(true)

    init(members: Int) {
        remaining = Atomic(members)
    }

    /// Records one finished member; true for the last one.
    func finished(acked: Bool) -> Bool {
        if !acked { allAcked.store(false, ordering: .relaxed) }
        return remaining.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0
    }
}
