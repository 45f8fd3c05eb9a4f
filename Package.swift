// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "klaviyo-relay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "klaviyo-relay", targets: ["RelayCLI"]),
        .executable(name: "klaviyo-sim", targets: ["KlaviyoSim"]),
        .executable(name: "klaviyo-relay-bench", targets: ["RelayBench"]),
        .library(name: "Relay", targets: ["Relay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // Hummingbird's own foundations, declared because KlaviyoSimCore and its tests import them directly.
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        // NIOHTTPTypes: the HTTP parts `serve`'s request deadline handler sees (Hummingbird's own dependency).
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        // Spans (issue #11); OTLP/HTTP export only (the gRPC exporter's packages cost more build time: README).
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.1.0"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.0.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C libraries from Debian, bridged with typed shims (see each shim.h).
        .systemLibrary(
            name: "CRabbitMQ", pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"]), .brew(["rabbitmq-c"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]),

        // Transport layers: know nothing of Klaviyo.
        .target(
            name: "AMQP",
            dependencies: [
                "CRabbitMQ", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(
            name: "HTTPClient",
            dependencies: [
                "CCurl", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),

        // Typed Klaviyo API client.
        .target(
            name: "Klaviyo",
            dependencies: [
                "HTTPClient", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),

        // The domain: commands, handlers, credentials, idempotency, dead letters.
        .target(
            name: "Relay",
            dependencies: [
                "AMQP", "Redis", "HTTPClient", "Klaviyo",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),
        // `serve`'s HTTP application (buildApplication), tested in-process.
        .target(
            name: "RelayServer",
            dependencies: [
                "Relay", "AMQP", "Redis", "Klaviyo",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                // TimeAmount, the unit of Hummingbird's idle timeout.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "RelayCLI",
            dependencies: [
                "Relay", "RelayServer", "AMQP", "Redis", "HTTPClient", "Klaviyo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),

        // The benchmark harness (scripts/bench/relay.sh): spawns `klaviyo-relay consume` processes.
        .executableTarget(
            name: "RelayBench",
            dependencies: [
                "Relay", "AMQP", "Redis", "HTTPClient", "Klaviyo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // Klaviyo simulator: library (testable) + thin executable.
        .target(
            name: "KlaviyoSimCore",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "KlaviyoSim",
            dependencies: [
                "KlaviyoSimCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        .testTarget(
            name: "AMQPTests",
            dependencies: ["AMQP", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strict),
        .testTarget(name: "RedisTests", dependencies: ["Redis"], swiftSettings: strict),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient"], swiftSettings: strict),
        .testTarget(
            name: "KlaviyoTests",
            dependencies: [
                "Klaviyo", "HTTPClient", "RelayTestSupport",
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "KlaviyoSimTests",
            dependencies: [
                "KlaviyoSimCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "RelayServerTests",
            dependencies: [
                "RelayServer", "Relay", "AMQP", "Redis", "HTTPClient", "Klaviyo", "RelayTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                // A raw TCP client (an idle connection to the public port).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "RelayTests",
            dependencies: [
                "Relay", "AMQP", "Redis", "Klaviyo", "RelayTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        // What the integration, chaos and hostile suites share: server locations, klaviyo-sim's admin API, bounded
        // polling, child processes, unique names. A library only test targets depend on.
        .target(
            name: "RelayTestSupport", dependencies: ["HTTPClient", "Klaviyo"], path: "Tests/RelayTestSupport",
            swiftSettings: strict),
        // Hummingbird: the OTLP/HTTP receiver of CommandTraceTests (the consumer process exports its spans to it).
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Relay", "AMQP", "Redis", "HTTPClient", "Klaviyo", "RelayTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // Runs only with RELAY_CHAOS=1 (scripts/test/chaos.sh): restarts the broker and Redis.
        .testTarget(
            name: "ChaosTests",
            dependencies: [
                "Relay", "AMQP", "Redis", "HTTPClient", "Klaviyo", "RelayTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Runs only with RELAY_HOSTILE=1 (scripts/test/hostile.sh): hostile publishers, operators and browsers.
        .testTarget(
            name: "HostileTests",
            dependencies: [
                "Relay", "AMQP", "Redis", "HTTPClient", "Klaviyo", "RelayTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
    ]
)
