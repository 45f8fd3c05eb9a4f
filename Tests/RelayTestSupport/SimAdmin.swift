public import HTTPClient
public import Klaviyo
import Testing

/// klaviyo-sim's admin API (`/_sim/…`): accounts, recorded requests, faults, settings.
public struct SimAdmin: Sendable {
    /// The transport the calls go through.
    public let http: HTTPClient
    /// The simulator's base URL, e.g. `http://127.0.0.1:18089`.
    public let baseURL: String
    /// Whether a failed call is also a recorded issue (the hostile suite reports it in its table instead).
    public let recordsIssues: Bool

    /// An admin client for the simulator at `baseURL`.
    public init(http: HTTPClient, baseURL: String, recordsIssues: Bool = true) {
        self.http = http
        self.baseURL = baseURL
        self.recordsIssues = recordsIssues
    }

    /// Calls `method path` with an optional JSON body and answers the parsed JSON response. An unreachable
    /// simulator or a non-2xx answer throws (``SimAdminError`` for the latter), after recording an issue if
    /// ``recordsIssues``.
    @discardableResult
    public func call(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        let response: HTTPResponse
        do {
            response = try await http.execute(
                HTTPRequest(method: method, url: baseURL + path, headers: headers, body: body?.jsonBytes()))
        } catch {
            if recordsIssues { Issue.record("klaviyo-sim is not reachable at \(baseURL): \(error)") }
            throw error
        }
        guard (200..<300).contains(response.status) else {
            let failure = SimAdminError(method: method, path: path, status: response.status, body: response.bodyString)
            if recordsIssues { Issue.record("\(failure)") }
            throw failure
        }
        return try JSONValue.parse(response.body)
    }
}
