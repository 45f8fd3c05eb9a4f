import AMQP
import ArgumentParser
import Foundation
import Logging
import Relay
import RelayServer
import ServiceLifecycle

/// `klaviyo-relay consume`: runs consumers (the part you scale out).
struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume", abstract: "Consume commands from the work queues and call Klaviyo.")

    @OptionGroup var options: GlobalOptions

    @Option(help: "Commands in flight in this process (overrides RELAY_CONCURRENCY).")
    var concurrency: Int?

    @Option(help: "Work queues to consume, comma-separated (profiles, events, campaigns, unroutable).")
    var queues = "profiles,events,campaigns,unroutable"

    func run() async throws {
        MallocTuning.limitArenas(environment: ProcessInfo.processInfo.environment)
        // Results, dead letters and acks of commands finishing within 1 ms of each other share one write, and the
        // broker takes them as one batch: about 15 % less RabbitMQ CPU per command at full load, for at most 1 ms
        // more per result (docs/operations.md).
        var runtime = try Runtime.make(
            options, label: "klaviyo-relay.consume", connectionName: "klaviyo-relay consume",
            amqpWriteBatchingDelay: .milliseconds(1))
        if let concurrency {
            guard concurrency > 0 else { throw ValidationError("--concurrency must be positive") }
            runtime = runtime.with(concurrency: concurrency)
        }
        let configuration = runtime.configuration
        var queueNames: [String] = []
        for name in queues.split(separator: ",") {
            guard let queue = RelayQueue(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown queue \(name); choose from profiles, events, campaigns, unroutable")
            }
            queueNames.append(runtime.topology.queueName(queue))
        }
        try ListeningPort.checkFree(configuration.metricsPort, setting: "RELAY_METRICS_PORT (0 disables metrics)")
        let metrics = MetricsBootstrap.bootstrap()
        let credentials = CredentialCache(store: runtime.credentialStore, ttl: configuration.credentialCacheTTL)
        let tokenManager = runtime.tokenManager(cache: credentials)
        let syncStatus = SyncStatusBuffer(status: SyncStatus(redis: runtime.redis), logger: runtime.logger)
        let processor = CommandProcessor(
            amqp: runtime.amqp, topology: runtime.topology,
            decoder: CommandDecoder(maxMessageBytes: configuration.maxMessageBytes),
            idempotency: IdempotencyStore(redis: runtime.redis, ttl: configuration.idempotencyTTL),
            credentials: credentials,
            credentialStore: runtime.credentialStore,
            executor: CommandExecutor(
                klaviyo: runtime.klaviyo, batcher: runtime.eventBatcher, coalescer: runtime.profileCoalescer),
            retryPolicy: RetryPolicy(
                maxAttempts: configuration.maxAttempts, baseDelay: configuration.retryBaseDelay,
                maxDelay: configuration.retryMaxDelay, maxRetryAge: configuration.maxRetryAge),
            crashPoint: configuration.crashPoint, logger: runtime.logger,
            tokenManager: tokenManager, syncStatus: syncStatus,
            lifecycle: runtime.connectionLifecycle(), rateLimiter: runtime.rateLimiter,
            replyTo: configuration.replyTo)
        // Each queue's prefetch exceeds the concurrency: the broker hands deliveries over (and takes acks) in
        // larger runs, which costs it less per command (bench: about 7 % of RabbitMQ's CPU at concurrency 64); the
        // extra deliveries wait in this process, unacked, and are redelivered if it dies.
        let basePrefetch = min(configuration.concurrency * 4, configuration.concurrency + 256)
        var prefetch = Dictionary(uniqueKeysWithValues: queueNames.map { ($0, basePrefetch) })
        // Batched events give their consumer slot back while they wait for the bulk call: the events queue may
        // hold that many more unacked deliveries.
        if configuration.batchWindow > .zero {
            prefetch[runtime.topology.queueName(.events)] = basePrefetch + EventBatcher.extraPrefetch
        }
        let consumer = ConsumerService(
            amqp: runtime.amqp, processor: processor, queues: queueNames, concurrency: configuration.concurrency,
            shutdownTimeout: configuration.shutdownTimeout, prefetch: prefetch, fairShare: configuration.fairShare,
            logger: runtime.logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: runtime.amqp)]
        let policiesGate = StartupGate(name: "policies")
        if configuration.metricsPort > 0 {
            services.append(
                .init(
                    service: HealthServer.make(
                        port: configuration.metricsPort, registry: metrics, amqp: runtime.amqp, redis: runtime.redis,
                        gate: policiesGate, logger: runtime.logger)))
        }
        if let tokenManager, configuration.keepAliveInterval > .zero {
            services.append(
                .init(
                    service: KeepAliveService(
                        store: runtime.credentialStore, tokenManager: tokenManager, idleAge: configuration.keepAliveAge,
                        interval: configuration.keepAliveInterval, logger: runtime.logger)))
        }
        if configuration.metricsPort > 0 {
            services.append(.init(service: ConnectionStateMetrics(redis: runtime.redis, logger: runtime.logger)))
        }
        do {
            if let exporter = try TracingBootstrap.bootstrap(logger: runtime.logger) {
                services.insert(.init(service: exporter), at: 0)
            }
        } catch {
            throw CLIError("tracing: \(error)")
        }
        // After the consumers in this list, so stopped after them: the last outcomes are written on shutdown.
        services.append(.init(service: syncStatus))
        services.append(.init(service: try runtime.policyGated(consumer, gate: policiesGate)))
        for caution in configuration.cautions { runtime.logger.warning("configuration: \(caution)") }
        runtime.logger.info(
            "starting consumers",
            metadata: [
                "config": "\(configuration)", "queues": "\(queueNames.joined(separator: ","))",
                "concurrency": "\(configuration.concurrency)",
            ])
        let group = ServiceGroup(
            configuration: .init(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
                logger: runtime.logger))
        try await group.run()
        await runtime.redis.shutdown()
        await runtime.http.shutdown()
        runtime.logger.info("consumer stopped cleanly")
    }
}

extension Runtime {
    func with(concurrency: Int) -> Runtime {
        var configuration = self.configuration
        configuration.concurrency = concurrency
        return Runtime(
            configuration: configuration, logger: logger, topology: topology, amqp: amqp, redis: redis, http: http,
            klaviyo: klaviyo, credentialStore: credentialStore)
    }
}
