import HTTPTypes
import KlaviyoSimCore
import Testing

@Suite("Latency and timeouts")
struct TimingTests {
    @Test func latencyIsNonBlocking() async throws {
        try await SimHarness().run { c in
            let set = try await c.admin(.put, "/_sim/settings", body: #"{"latency_ms":500}"#)
            #expect(set.json?["latency_ms"] == 500)
            let clock = ContinuousClock()
            let start = clock.now
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 { group.addTask { try await c.call(.get, "/api/profiles").status } }
                for try await status in group { #expect(status == 200) }
            }
            let elapsed = clock.now - start
            // 20 calls of 500 ms each: a delay that blocks serves them one after another (≥ 10 s); overlapping,
            // they take about 0.5 s. The bound is half the serial time, so a loaded machine does not fail it while
            // a blocking delay always does.
            #expect(elapsed >= .milliseconds(500))
            #expect(elapsed < .seconds(5), "20 delayed calls took \(elapsed): the delay blocks")
        }
    }

    @Test func timeoutFaultWaitsThenAnswers504WithoutStateChange() async throws {
        try await SimHarness().run { c in
            _ = try await c.admin(.put, "/_sim/faults", body: #"{"timeout_rate":1.0,"timeout_ms":250}"#)
            let clock = ContinuousClock()
            let start = clock.now
            let r = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            #expect(clock.now - start >= .milliseconds(250))
            #expect(r.status == 504)
            #expect(try await c.admin(.get, "/_sim/accounts/acct_1/profiles").json?["count"] == 0)
        }
    }

    @Test func compressedBodyIs415() async throws {
        try await SimHarness().run { c in
            var h = SimClient.klaviyoHeaders()
            h[.contentEncoding] = "gzip"
            let r = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody, headers: h)
            #expect(r.status == 415)
        }
    }
}
