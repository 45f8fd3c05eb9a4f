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
    let logger: Logger

    /// Creates the service.
    public init(
        amqp: AMQPClient, processor: CommandProcessor, queues: [String], concurrency: Int, shutdownTimeout: Duration,
        prefetch: [String: Int] = [:], logger: Logger
    ) {
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
            Task {
                try? await Task.sleep(for: shutdownTimeout)
                logger.warning("shutdown timeout reached: handing back unfinished commands")
                work.cancel()
            }
        }
        logger.info("consumers stopped")
    }

    func consume(_ consumers: [AMQPConsumer]) async {
        let limiter = AsyncSemaphore(concurrency)
        let inFlight = Gauge(label: "relay_commands_in_flight")
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
            let counter = InFlightCounter()
            for await delivery in merged {
                await limiter.acquire()
                if Task.isCancelled {
                    limiter.release()
                    break
                }
                inFlight.record(counter.increment())
                group.addTask {
                    // A command that only waits for a shared call may give its slot back early
                    // (ConcurrencySlot); the slot is released exactly once either way.
                    let slot = ConcurrencySlot {
                        inFlight.record(counter.decrement())
                        limiter.release()
                    }
                    _ = await CommandTracing.withCommandSpan(delivery, queue: delivery.queue) {
                        await ConcurrencySlot.$current.withValue(slot) { await processor.process(delivery) }.metricLabel
                    }
                    slot.release()
                }
            }
            continuation.finish()
        }
    }
}

/// Counts commands in flight for the gauge.
final class InFlightCounter: Sendable {
    let value = Atomic<Int>(0)

    func increment() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
    func decrement() -> Int { value.wrappingSubtract(1, ordering: .relaxed).newValue }
}
