import Foundation
import HTTPClient
import Klaviyo
import RelayTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `consume` serves `/healthz`, `/readyz` and Prometheus `/metrics` on RELAY_METRICS_PORT.
@Suite("Consumer health and metrics", .timeLimit(.minutes(2)))
struct HealthEndpointTests {
    @Test func healthReadinessAndMetrics() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let port = try freePort()
            _ = try stack.startConsumer(environment: ["RELAY_METRICS_PORT": String(port)])
            try await stack.waitForConsumers(1)
            let base = "http://127.0.0.1:\(port)"
            var ready: HTTPResponse?
            try await eventually("/readyz to answer", timeout: .seconds(20)) {
                ready = try? await stack.http.execute(HTTPRequest(url: base + "/readyz"))
                return ready != nil
            }
            #expect(ready?.status == 200)
            #expect(ready?.bodyString == "rabbitmq=up redis=up policies=ok\n", "\(ready?.bodyString ?? "")")
            let health = try await stack.http.execute(HTTPRequest(url: base + "/healthz"))
            #expect(health.status == 200)

            let id = stack.id("metrics-1")
            try await stack.publish(
                commandBody(
                    id: id, type: "profile.upsert", accountID: account, payload: ["profile": ["email": "m@example.com"]]
                ),
                routingKey: "profile.upsert", messageID: id)
            try await stack.publish(
                Array("garbage".utf8), routingKey: "profile.upsert", messageID: stack.id("metrics-2"))
            try await stack.waitForCollected(2)
            // Counters are updated after the ack, so poll until both outcomes are counted.
            var metrics = ""
            try await eventually("both commands in /metrics", timeout: .seconds(20)) {
                metrics = (try? await stack.http.execute(HTTPRequest(url: base + "/metrics")).bodyString) ?? ""
                return metrics.contains("relay_dead_letters_total") && metrics.contains("outcome=\"succeeded\"")
            }
            let succeeded = metrics.split(separator: "\n").filter {
                $0.hasPrefix("relay_commands_total{") && $0.contains("outcome=\"succeeded\"")
                    && $0.contains("type=\"profile.upsert\"")
            }
            #expect(succeeded.count == 1 && succeeded.first?.hasSuffix(" 1") == true, "\(succeeded)")
            #expect(metrics.contains("code=\"not_json\""))
        }
    }
}

/// A TCP port nothing listens on right now (bound to port 0, read back, closed).
func freePort() throws -> Int {
    let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socketFD) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) }
    }
    guard bound == 0 else { throw TimedOut(what: "a free port") }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
