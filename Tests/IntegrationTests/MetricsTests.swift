import Foundation
import HTTPClient
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// Real commands through a `klaviyo-relay consume` process change its `/metrics` as they should (issue #11):
/// a 429 from klaviyo-sim shows in the Klaviyo call series (status class, latency, Retry-After) and in the
/// retry-tier counter; the result's confirmed publish and the build are there too. The scrape's metric names
/// are written to `.build/relay-metrics-names.txt` for `scripts/check/check-dashboards.py`. Nested in
/// ``RetryTierTests`` because klaviyo-sim has one fault configuration: that suite's `.serialized` makes the tests
/// that inject faults take turns.
extension RetryTierTests {
    @Suite("Relay metrics", .timeLimit(.minutes(3)))
    struct MetricsTests {
        @Test func throttledCallShowsInKlaviyoAndRetryMetrics() async throws {
            try await withRelayStack { stack in
                let (account, _) = try await stack.connectAccount()
                try await stack.setFaults([
                    "throttle_rate": 1.0, "retry_after_seconds": 1, "account_id": .string(account),
                    "paths": ["/api/profile-import"],
                ])
                let port = try freePort()
                _ = try stack.startConsumer(environment: [
                    "RELAY_METRICS_PORT": String(port), "RELAY_RETRY_MAX_DELAY": "1s",
                    "RELAY_RETRY_BASE_DELAY": "200ms",
                    "RELAY_MAX_ATTEMPTS": "30",
                ])
                try await stack.waitForConsumers(1)
                let metricsURL = "http://127.0.0.1:\(port)/metrics"
                let id = stack.id("metrics-429")
                try await stack.publish(
                    commandBody(
                        id: id, type: "profile.upsert", accountID: account,
                        payload: ["profile": ["email": .string("\(id)@example.com".lowercased())]]),
                    routingKey: "profile.upsert", messageID: id)

                var scrape = PrometheusScrape(text: "")
                try await eventually("a 429 counted in /metrics", timeout: .seconds(30)) {
                    // The consumer may take its queue before its metrics port listens (a loaded machine): a refused
                    // connection is "not yet", not a failure.
                    guard let scraped = try? await Self.scrape(stack, metricsURL) else { return false }
                    scrape = scraped
                    let throttled = ["operation": "create_or_update_profile", "status": "429"]
                    return scrape.sum("relay_klaviyo_calls_total", throttled) >= 1
                }
                try await stack.clearFaults()
                try await stack.waitForCollected(1)
                #expect(stack.results(for: id).first?.outcome == .succeeded)
                try await eventually("the success and its result counted", timeout: .seconds(20)) {
                    scrape = try await Self.scrape(stack, metricsURL)
                    return scrape.sum("relay_klaviyo_calls_total", ["status": "2xx"]) >= 1
                        && scrape.sum("relay_publishes_total", ["kind": "result"]) >= 1
                        // Counted after the ack, so possibly after the result was collected.
                        && scrape.sum("relay_commands_total", ["type": "profile.upsert", "outcome": "succeeded"]) >= 1
                }

                let throttled = scrape.sum(
                    "relay_klaviyo_calls_total", ["operation": "create_or_update_profile", "status": "429"])
                let retries = scrape.sum("relay_retries_scheduled_total", ["reason": "failure"])
                // Every 429 but the last led to a retry in a tier (the call after the faults cleared succeeded).
                #expect(retries >= 1)
                #expect(retries == throttled, "retries \(retries) vs 429s \(throttled)")
                #expect(
                    scrape.series("relay_retries_scheduled_total").allSatisfy {
                        ["1s", "5s"].contains($0.labels["tier"])
                    })
                #expect(scrape.sum("relay_klaviyo_retry_after_seconds_count", [:]) == throttled)
                // Retry-After: 1 falls in the le="1" bucket, none of them below it.
                #expect(scrape.sum("relay_klaviyo_retry_after_seconds_bucket", ["le": "1.0"]) == throttled)
                #expect(scrape.sum("relay_klaviyo_retry_after_seconds_bucket", ["le": "0.0"]) == 0)
                #expect(
                    scrape.sum("relay_klaviyo_call_duration_seconds_count", ["operation": "create_or_update_profile"])
                        == throttled + 1)
                #expect(scrape.sum("relay_publishes_total", ["kind": "retry"]) == retries)
                #expect(scrape.sum("relay_publish_confirm_seconds_count", ["kind": "result"]) >= 1)
                #expect(scrape.sum("relay_commands_total", ["type": "profile.upsert", "outcome": "succeeded"]) == 1)
                #expect(scrape.series("relay_build_info").first?.labels["version"]?.isEmpty == false)
                #expect(scrape.sum("relay_build_info", [:]) == 1)
                // The connection gauge was refreshed at start-up: one series per state.
                #expect(
                    Set(scrape.series("relay_connections").compactMap { $0.labels["state"] }) == [
                        "connected", "reauth_required", "disconnected",
                    ])
                // Labels come from closed sets: no account id anywhere in the scrape.
                #expect(!scrape.text.contains(account))

                try Self.writeNames(scrape)
            }
        }

        static func scrape(_ stack: RelayStack, _ url: String) async throws -> PrometheusScrape {
            let response = try await stack.http.execute(HTTPRequest(url: url))
            return PrometheusScrape(text: response.bodyString)
        }

        /// The metric names of the scrape, one a line, for the dashboard check.
        static func writeNames(_ scrape: PrometheusScrape) throws {
            let path = IntegrationEnvironment.repositoryRoot
                .appendingPathComponent(".build/relay-metrics-names.txt").path
            let names = Set(scrape.samples.map(\.name)).sorted().joined(separator: "\n") + "\n"
            try names.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}

/// A Prometheus text exposition, parsed just enough for assertions.
struct PrometheusScrape {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let text: String
    let samples: [Sample]

    init(text: String) {
        self.text = text
        samples = text.split(separator: "\n").compactMap { line -> Sample? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " ") else { return nil }
            let head = line[..<space]
            guard let value = Double(line[line.index(after: space)...]) else { return nil }
            guard let brace = head.firstIndex(of: "{") else {
                return Sample(name: String(head), labels: [:], value: value)
            }
            var labels: [String: String] = [:]
            let body = head[head.index(after: brace)..<(head.lastIndex(of: "}") ?? head.endIndex)]
            for pair in body.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0])] = String(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
            }
            return Sample(name: String(head[..<brace]), labels: labels, value: value)
        }
    }

    /// The samples of a metric.
    func series(_ name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// The sum of the samples of `name` whose labels include `labels`.
    func sum(_ name: String, _ labels: [String: String]) -> Double {
        series(name).filter { sample in labels.allSatisfy { sample.labels[$0.key] == $0.value } }.map(\.value)
            .reduce(0, +)
    }
}
