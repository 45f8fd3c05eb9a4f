import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KlaviyoSimCore
import Logging
import NIOCore

/// A decoded response: status, headers and parsed JSON body.
struct SimResponse: Sendable {
    var status: Int
    var headers: HTTPFields
    var json: JSONValue?

    /// `errors[0]` of a JSON:API error body.
    var firstError: JSONValue? { json?["errors"]?.arrayValue?.first }
}

/// Runs a simulator with one seeded account (`acct_1` / `pk_test`) under HummingbirdTesting's router client.
struct SimHarness {
    static let apiKey = "pk_test_0123456789abcdefghijklmnopqrstuv"
    static let profileBody =
        #"{"data":{"type":"profile","attributes":{"email":"sarah.mason@example.com","first_name":"Sarah","properties":{"plan":"pro"}}}}"#

    let simulator: KlaviyoSimulator

    init(rateLimits: Bool = false, seed: Bool = true) {
        var config = SimConfiguration()
        config.rateLimitsEnabled = rateLimits
        if seed { config.seedAccounts = [SimAccount(accountId: "acct_1", apiKey: Self.apiKey, name: "Demo Store")] }
        var logger = Logger(label: "klaviyo-sim-tests")
        logger.logLevel = .warning
        simulator = KlaviyoSimulator(configuration: config, logger: logger)
    }

    /// Runs `body` with a client bound to the simulator.
    func run(_ setup: TestingSetup = .router, _ body: @escaping @Sendable (SimClient) async throws -> Void) async throws
    {
        let app = simulator.makeApplication()
        try await app.test(setup) { client in try await body(SimClient(client: client)) }
    }
}

/// Convenience wrapper over the test client.
struct SimClient: Sendable {
    let client: any TestClientProtocol

    /// Standard Klaviyo headers with the seeded key.
    static func klaviyoHeaders(
        auth: String? = "Klaviyo-API-Key \(SimHarness.apiKey)", revision: String? = "2025-10-15",
        contentType: String? = "application/vnd.api+json"
    ) -> HTTPFields {
        var h = HTTPFields()
        if let auth { h[.authorization] = auth }
        if let revision { h[HTTPField.Name("revision")!] = revision }
        if let contentType { h[.contentType] = contentType }
        h[.accept] = "application/vnd.api+json"
        h[.userAgent] = "klaviyo-sim-tests/1.0"
        return h
    }

    func call(
        _ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: HTTPFields? = nil
    ) async throws
        -> SimResponse
    {
        let response = try await client.execute(
            uri: uri, method: method, headers: headers ?? Self.klaviyoHeaders(),
            body: body.map { ByteBuffer(string: $0) })
        let bytes = Array(response.body.readableBytesView)
        return SimResponse(
            status: Int(response.status.code), headers: response.headers,
            json: bytes.isEmpty ? nil : try JSONValue.parse(bytes))
    }

    /// Admin call (`/_sim/...`), JSON in and out.
    func admin(_ method: HTTPRequest.Method, _ path: String, body: String? = nil) async throws -> SimResponse {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        return try await call(method, path, body: body, headers: h)
    }
}
