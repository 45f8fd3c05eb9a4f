import Foundation
import HTTPClient
import Klaviyo
import Testing

/// klaviyo-sim over HTTP: its admin API (`/_sim/...`) and its authorize page (what a browser opens).
struct SimAdmin: Sendable {
    /// The sim's answer to a page: status and `Location`.
    struct Redirect: Sendable {
        var status: Int
        var location: String?
    }

    let http: HTTPClient

    /// The HTTP client of the tests (the relay's own libcurl client).
    static func makeClient() -> HTTPClient { HTTPClient(logger: ServerEnvironment.logger) }

    /// Closes the HTTP client.
    func shutdown() async { await http.shutdown() }

    /// An admin call, JSON in and out; a 2xx is expected, an unreachable sim fails loudly.
    @discardableResult
    func admin(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        let response: HTTPResponse
        do {
            response = try await http.execute(
                HTTPRequest(
                    method: method, url: ServerEnvironment.simURL + path, headers: headers, body: body?.jsonBytes()))
        } catch {
            Issue.record("klaviyo-sim is not reachable at \(ServerEnvironment.simURL): \(error)")
            throw error
        }
        #expect(
            (200..<300).contains(response.status), "sim \(method) \(path) → \(response.status) \(response.bodyString)")
        return try JSONValue.parse(response.body)
    }

    /// GETs a URL of the sim (redirects are not followed).
    func open(_ url: String) async throws -> Redirect {
        let response = try await http.execute(HTTPRequest(method: .GET, url: url))
        return Redirect(status: response.status, location: response.headers["Location"])
    }
}
