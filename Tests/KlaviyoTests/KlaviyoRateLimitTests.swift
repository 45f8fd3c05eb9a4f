import Klaviyo
import Logging
import Synchronization
import Testing

@Suite("Klaviyo rate-limit table")
struct KlaviyoRateLimitTableTests {
    /// Values from x-klaviyo-ratelimit of the 2025-10-15 spec (../shared/klaviyo/openapi/stable.json).
    @Test(arguments: [
        ("create_event", 350, 3500),
        ("get_profiles", 75, 700),
        ("create_or_update_profile", 75, 700),
        ("bulk_create_events", 10, 150),
        ("get_accounts", 1, 15),
        ("add_profiles_to_list", 10, 150),
    ])
    func knownOperationsHaveTheSpecsValues(operationID: String, burst: Int, steady: Int) {
        #expect(KlaviyoRateLimits.table[operationID] == KlaviyoRateLimit(burst: burst, steady: steady))
    }

    @Test func everyOperationOfTheSpecIsListed() {
        // The spec declares x-klaviyo-ratelimit on all 303 operations of revision 2025-10-15.
        #expect(KlaviyoRateLimits.table.count == 303)
        #expect(KlaviyoRateLimits.table.values.allSatisfy { $0.burst >= 1 && $0.steady >= $0.burst })
    }

    @Test func everyOperationTheClientCallsIsLimited() {
        let called = [
            "bulk_create_events", "bulk_import_profiles", "bulk_subscribe_profiles", "bulk_unsubscribe_profiles",
            "cancel_campaign_send", "create_campaign", "create_event", "create_list", "create_or_update_profile",
            "get_accounts", "get_bulk_import_profiles_job", "get_campaign", "get_campaign_send_job",
            "get_errors_for_bulk_import_profiles_job", "get_flows", "get_lists", "get_profiles", "send_campaign",
            "add_profiles_to_list", "remove_profiles_from_list", "update_flow", "update_profile",
        ]
        for operationID in called {
            #expect(KlaviyoRateLimits.table[operationID] != nil, "\(operationID) has no rate limit")
        }
    }

    @Test func scalingRoundsDownAndKeepsAtLeastOne() {
        let limit = KlaviyoRateLimit(burst: 75, steady: 700)
        #expect(limit.scaled(by: 1.0) == limit)
        #expect(limit.scaled(by: 0.5) == KlaviyoRateLimit(burst: 37, steady: 350))
        #expect(KlaviyoRateLimit(burst: 1, steady: 15).scaled(by: 0.1) == KlaviyoRateLimit(burst: 1, steady: 1))
    }
}

/// A gate that refuses everything, counting the calls it saw.
final class RefusingGate: KlaviyoCallGate {
    let seen = Mutex<[String]>([])

    func admit(operationID: String, credential: KlaviyoCredential) async throws(KlaviyoError) {
        seen.withLock { $0.append(operationID) }
        throw KlaviyoError(
            code: .heldBack, operationID: operationID, message: "held back", retryAfter: .milliseconds(700),
            requestMayHaveBeenSent: false)
    }
}

/// A gate that admits everything, counting the calls it saw.
final class AdmittingGate: KlaviyoCallGate {
    let seen = Mutex<[String]>([])

    func admit(operationID: String, credential: KlaviyoCredential) async throws(KlaviyoError) {
        seen.withLock { $0.append(operationID) }
    }
}

@Suite("Klaviyo call gate")
struct KlaviyoCallGateTests {
    static let getAccounts = KlaviyoRequest(
        operationID: "get_accounts", method: "GET", path: "/api/accounts", isIdempotent: true)

    func client(_ transport: RecordingTransport) -> KlaviyoClient {
        KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "klaviyo-relay/test",
            logger: Logger(label: "test"))
    }

    @Test func aRefusingGateKeepsTheCallFromTheTransport() async throws {
        let transport = RecordingTransport { _ in RecordingTransport.json(200, #"{"data":[]}"#) }
        let gate = RefusingGate()
        let gated = client(transport).gated(by: gate)
        do {
            _ = try await gated.send(Self.getAccounts, credential: .apiKey("pk_secret"))
            Issue.record("the gate's refusal was not thrown")
        } catch {
            #expect(error.code == .heldBack)
            #expect(error.code.rawValue == "rate_limited")
            #expect(error.retryAfter == .milliseconds(700))
            #expect(!error.requestMayHaveBeenSent)
            #expect(error.retryDecision == .retryAfter(.milliseconds(700)))
            #expect(error.isRetriable)
        }
        #expect(transport.requests.withLock { $0.isEmpty })
        #expect(gate.seen.withLock { $0 } == ["get_accounts"])
    }

    @Test func anAdmittingGateSeesEachCallAndTheUngatedClientNone() async throws {
        let transport = RecordingTransport { _ in RecordingTransport.json(200, #"{"data":[]}"#) }
        let gate = AdmittingGate()
        let plain = client(transport)
        _ = try await plain.send(Self.getAccounts, credential: .apiKey("pk_secret"))
        #expect(gate.seen.withLock { $0.isEmpty })
        _ = try await plain.gated(by: gate).send(Self.getAccounts, credential: .apiKey("pk_secret"))
        #expect(gate.seen.withLock { $0 } == ["get_accounts"])
        #expect(transport.requests.withLock { $0.count } == 2)
    }

    @Test func heldBackWithoutRetryAfterWaitsLikeA429() {
        let error = KlaviyoError(code: .heldBack, operationID: "op", message: "m", requestMayHaveBeenSent: false)
        #expect(error.retryDecision == .retryAfter(.seconds(1)))
        let unavailable = KlaviyoError(
            code: .gateUnavailable, operationID: "op", message: "m", requestMayHaveBeenSent: false)
        #expect(unavailable.retryDecision == .backoff)
    }
}
