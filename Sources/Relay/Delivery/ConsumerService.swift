public import AMQP
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Runs the consumers of one process: takes deliveries from the work queues and processes up to
/// `concurrency` of them at once (their Klaviyo calls overlap). On graceful shutdown (SIGTERM) it stops
/// taking work, lets in-flight commands finish within `shutdownTimeout`, then cancels the rest, which are
/// handed back unacked for redelivery.
public struct ConsumerService: Service {
    let amqp: AMQPClient
    let processor: CommandProcessor
    let queues: [String]
    let concurrency: Int
    let shutdownTimeout: Duration
    /// Prefetch of the queues that need more unacked deliveries than `concurrency` (the events queue, whose
    /// batched events give their slot back while they wait for the bulk call); others take `concurrency`.
    let prefetch: [String: Int]
    /// Share of the slots one account may hold before its further deliveries are bundled (``AccountFairness``;
    /// 0: off).
    let fairShare: Double
    let logger: Logger
    /// How long a handed-back delivery waits before it is requeued (``handBack(_:amqp:after:logger:)``).
    static let handBackDelay = Duration.seconds(1)

    /// Creates the service.
    public init(
        amqp: AMQPClient, processor: CommandProcessor, queues: [String], concurrency: Int, shutdownTimeout: Duration,
        prefetch: [String: Int] = [:], fairShare: Double = 0, logger: Logger
    ) {
        self.fairShare = fairShare
        self.amqp = amqp
        self.processor = processor
        self.queues = queues
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
    }

    /// Consumes until graceful shutdown or cancellation.
    public func run() async throws {
        let consumers = queues.map {
            amqp.consume(queue: $0, prefetch: UInt16(clamping: prefetch[$0] ?? concurrency))
        }
        let work = Task {
            await consume(consumers)
        }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await work.value
            } onCancel: {
                work.cancel()
            }
        } onGracefulShutdown: {
            logger.info("graceful shutdown: no new commands; finishing in-flight ones")
            Task {
                for consumer in consumers { await consumer.cancel() }
            }
            // Batched events waiting for a rate-limit slot (up to a minute away) are handed back now.
            processor.executor.batcher?.stopWaiting()
            Task {
                try? await Task.sleep(for: shutdownTimeout)
                logger.warning("shutdown timeout reached: handing back unfinished commands")
                work.cancel()
            }
        }
        // Published marks still queued ride along with nothing any more: write them (a lost one only makes a
        // redelivery publish its result again).
        do {
            try await processor.idempotency.flushMarks()
        } catch {
            logger.warning(
                "could not write the last published marks",
                metadata: [
                    LogKeys.errorDetail: "\(error)", "pending_marks": "\(processor.idempotency.pendingMarkCount)",
                ])
        }
        logger.info("consumers stopped")
    }

    func consume(_ consumers: [AMQPConsumer]) async {
        let slots = Slots(concurrency: concurrency)
        let eventsQueue = processor.topology.queueName(.events)
        let fairness = AccountFairness(
            settings: .init(
                concurrency: concurrency, fairShare: fairShare,
                prefetch: queues.filter { $0 != eventsQueue }.map { prefetch[$0] ?? concurrency }.min() ?? concurrency,
                eventsPrefetch: prefetch[eventsQueue]),
            amqp: amqp, topology: processor.topology, seal: processor.seal, logger: logger)
        let (merged, continuation) = AsyncStream.makeStream(of: AMQPDelivery.self)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await withDiscardingTaskGroup { feeders in
                    for consumer in consumers {
                        feeders.addTask {
                            do {
                                for try await delivery in consumer { continuation.yield(delivery) }
                            } catch {
                                logger.error("consumer stream failed", metadata: [LogKeys.errorDetail: "\(error)"])
                            }
                        }
                    }
                }
                continuation.finish()
            }
            for await delivery in merged {
                switch fairness.route(delivery) {
                case .process(let account):
                    let events = fairness.isEvents(delivery)
                    await slots.limiter.acquire()
                    if Task.isCancelled {
                        slots.limiter.release()
                        if let account { fairness.released(account: account, events: events) }
                        break
                    }
                    group.addTask {
                        // An event counts against its account until it finished, not only while it holds a slot.
                        await run(
                            delivery, slots: slots,
                            released: { if let account, !events { fairness.released(account: account) } },
                            finished: { if let account, events { fairness.released(account: account, events: true) } })
                    }
                case .bundle(let account):
                    switch fairness.add(delivery, account: account) {
                    case .full(let key, let generation):
                        group.addTask { await fairness.flush(key, generation: generation) }
                    case .opened(let key, let generation):
                        group.addTask {
                            try? await Task.sleep(for: fairness.settings.flushAfter)
                            await fairness.flush(key, generation: generation)
                        }
                    case .joined:
                        break
                    }
                case .unpack(let bundle, let account):
                    switch fairness.admit(delivery, bundle, account: account) {
                    case .start:
                        group.addTask { await lane(account, fairness: fairness, slots: slots) }
                    case .queued:
                        break
                    case .full:
                        group.addTask { await fairness.repark(delivery, bundle) }
                    }
                case .dissolve(let bundle):
                    group.addTask { await fairness.dissolve(delivery, bundle) }
                }
                if Task.isCancelled { break }
            }
            fairness.stopping.store(true, ordering: .relaxed)
            await fairness.flushAll()
            continuation.finish()
        }
    }

    /// The consumer slots of the process.
    struct Slots: Sendable {
        let limiter: AsyncSemaphore
        let inFlight = Gauge(label: "relay_commands_in_flight")
        let counter = InFlightCounter()

        init(concurrency: Int) {
            limiter = AsyncSemaphore(concurrency)
        }
    }

    /// Processes one delivery in a slot already taken; `released` runs when the slot is given back (early, for a
    /// command that waits for a shared call), `finished` when the command is finished.
    func run(
        _ delivery: AMQPDelivery, slots: Slots, released: @escaping @Sendable () -> Void,
        finished: @Sendable () -> Void = {}
    ) async {
        slots.inFlight.record(slots.counter.increment())
        // A command that only waits for a shared call may give its slot back early (ConcurrencySlot); the slot is
        // released exactly once either way.
        let slot = ConcurrencySlot {
            slots.inFlight.record(slots.counter.decrement())
            slots.limiter.release()
            released()
        }
        let outcome = await CommandTracing.withCommandSpan(delivery, queue: delivery.queue) {
            await ConcurrencySlot.$current.withValue(slot) { await processor.process(delivery) }.metricLabel
        }
        slot.release()
        finished()
        if outcome == CommandProcessor.Outcome.handedBack.metricLabel {
            await Self.handBack(delivery, amqp: amqp, logger: logger)
        }
    }

    /// Requeues a delivery the processor could not finish (Redis or the broker kept failing, or shutdown):
    /// left unacked on a live channel it would hold a prefetch slot until the connection closes, and enough of
    /// them stall the process for every account. The requeue waits `delay` (none during shutdown), so a
    /// failure that persists does not spin; each requeue counts toward the queue's delivery limit, after which
    /// the broker dead-letters the command (`delivery_limit`). A delivery from a gone connection is stale: the
    /// broker redelivers it anyway, and the nack is refused before anything is sent.
    static func handBack(
        _ delivery: AMQPDelivery, amqp: AMQPClient, after delay: Duration = handBackDelay, logger: Logger
    ) async {
        if !Task.isCancelled { try? await Task.sleep(for: delay) }
        do {
            try await amqp.nack(delivery, requeue: true)
        } catch {
            logger.debug("handed-back delivery not requeued", metadata: [LogKeys.errorDetail: "\(error)"])
        }
    }

    /// Unpacks the bundles of one account's lane in order: each member is processed like the delivery it was, at
    /// most `laneSlots` at once; a bundle is acked when all its members were.
    func lane(_ account: String, fairness: AccountFairness, slots: Slots) async {
        let share = AsyncSemaphore(fairness.settings.laneSlots)
        await withDiscardingTaskGroup { group in
            while let (carrier, bundle) = fairness.nextBundle(of: account) {
                Counter(label: "relay_fairness_bundles_total", dimensions: [("event", "unpacked")]).increment()
                let members = fairness.members(of: carrier, bundle)
                let events = fairness.isEvents(carrier)
                let progress = BundleProgress(members: members.count)
                for member in members {
                    await share.acquire()
                    await slots.limiter.acquire()
                    if Task.isCancelled || fairness.stopping.load(ordering: .relaxed) {
                        slots.limiter.release()
                        share.release()
                        // The rest stays in the unacked bundle, which the broker delivers again.
                        fairness.closeLane(account)
                        return
                    }
                    fairness.claim(account, events: events)
                    group.addTask {
                        // A batched event gives its lane share back with its slot (the lane keeps the batcher's
                        // calls full) but counts against its account until it finished.
                        await run(
                            member, slots: slots,
                            released: {
                                if !events { fairness.released(account: account) }
                                share.release()
                            },
                            finished: { if events { fairness.released(account: account, events: true) } })
                        guard progress.finished(acked: member.localSettlement?.kind == .ack) else { return }
                        if progress.allAcked.load(ordering: .relaxed) {
                            try? await amqp.ack(carrier)
                        } else {
                            // A member handed back: the broker delivers the bundle again, and it is dissolved
                            // (members already done come back as duplicates).
                            try? await amqp.nack(carrier, requeue: true)
                        }
                    }
                }
            }
        }
    }
}

/// Counts commands in flight for the gauge.
final class InFlightCounter: Sendable {
    let value = Atomic<Int>(0)

    func increment() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
    func decrement() -> Int { value.wrappingSubtract(1, ordering: .relaxed).newValue }
}
