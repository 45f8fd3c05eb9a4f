import Foundation
public import HTTPClient
import Klaviyo
public import Logging

/// The RabbitMQ management HTTP API, for the topology's policies (``RelayTopology/Mode/policies``):
/// `klaviyo-relay setup` applies them, `consume` checks they are in force before it takes work.
///
/// The URL's credentials (`http://user:password@host:15672`) go into an `Authorization: Basic` header; the
/// requests' URLs, and so every error and log line, carry none.
public struct RabbitMQManagement: Sendable {
    /// `scheme://host:port[/path]`, without credentials or a trailing `/`.
    public let baseURL: String
    /// The virtual host the topology lives in.
    public let vhost: String
    private let authorization: String?
    private let http: HTTPClient

    /// Reads `RELAY_RABBITMQ_MANAGEMENT_URL` (`http[s]://user:password@host:port[/path-prefix]`; user and password
    /// percent-encoded). `vhost` is the AMQP URL's.
    public init(url: String, vhost: String, http: HTTPClient) throws(RelayError) {
        let (base, user, password) = try Self.parse(url)
        baseURL = base
        self.vhost = vhost
        self.http = http
        authorization = user.map { "Basic " + Data("\($0):\(password ?? "")".utf8).base64EncodedString() }
    }

    /// Splits a management URL into its base (no credentials) and the decoded user and password.
    static func parse(_ url: String) throws(RelayError) -> (base: String, user: String?, password: String?) {
        let refused = RelayError(
            code: .invalidConfiguration,
            message: "RELAY_RABBITMQ_MANAGEMENT_URL must be http[s]://user:password@host:port, such as "
                + "http://guest:guest@127.0.0.1:15672 (the value is not repeated here: it may hold a password)")
        let lowered = url.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://"),
            let schemeEnd = url.range(of: "://")
        else { throw refused }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        guard !path.contains("?"), !path.contains("#") else { throw refused }
        while path.hasSuffix("/") { path.removeLast() }
        var user: String?
        var password: String?
        var host = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            host = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = String(userInfo[..<colon]).removingPercentEncoding
                password = String(userInfo[userInfo.index(after: colon)...]).removingPercentEncoding
                guard password != nil else { throw refused }
            } else {
                user = String(userInfo).removingPercentEncoding
            }
            guard user != nil else { throw refused }
        }
        guard !host.isEmpty else { throw refused }
        return (String(url[..<schemeEnd.upperBound]) + host + path, user, password)
    }

    /// The broker's major version (`GET /api/overview`, `rabbitmq_version`), nil when it does not say.
    public func brokerMajorVersion() async throws(RelayError) -> Int? {
        let overview = try await request(.GET, "overview", nil, accept: [200], inVhost: false).json
        return overview["rabbitmq_version"]?.stringValue.flatMap(RelayTopology.majorVersion)
    }

    /// The topology as this broker needs it: on RabbitMQ 4 and later, the dead queue's policy also lifts the
    /// default delivery limit (``RelayTopology/unlimitedDeadDeliveries``).
    public func adapted(_ topology: RelayTopology) async throws(RelayError) -> RelayTopology {
        var adapted = topology
        adapted.unlimitedDeadDeliveries = (try await brokerMajorVersion() ?? 0) >= 4
        return adapted
    }

    /// Creates or updates every policy of `topology` (`PUT /api/policies/<vhost>/<name>`).
    public func apply(_ policies: [RelayTopology.Policy]) async throws(RelayError) {
        for policy in policies {
            let body = JSONValue.object([
                "pattern": .string(policy.pattern), "apply-to": .string(policy.applyTo.rawValue),
                "priority": .int(Int64(policy.priority)), "definition": policy.definitionJSON,
            ])
            _ = try await request(.PUT, "policies", policy.name, body: body, accept: [200, 201, 204])
        }
    }

    /// Deletes policies by name (`DELETE /api/policies/<vhost>/<name>`); ones already gone are fine (tearing down a
    /// test environment).
    public func remove(_ policies: [RelayTopology.Policy]) async throws(RelayError) {
        for policy in policies {
            _ = try await request(.DELETE, "policies", policy.name, accept: [200, 204, 404])
        }
    }

    /// What is missing for `topology`'s policies to be in force, as the management API reports it now.
    public func problems(_ topology: RelayTopology) async throws(RelayError) -> [PolicyProblem] {
        var queues: [String: JSONValue] = [:]
        var exchanges: [String: JSONValue] = [:]
        for policy in topology.policies {
            for name in policy.covers {
                let kind = policy.applyTo == .queues ? "queues" : "exchanges"
                let answer = try await request(.GET, kind, name, accept: [200, 404])
                if answer.status == 200 {
                    if policy.applyTo == .queues { queues[name] = answer.json } else { exchanges[name] = answer.json }
                }
            }
        }
        let policies = try await request(.GET, "policies", nil, accept: [200]).json
        return topology.policyProblems(queues: queues, exchanges: exchanges, policies: policies)
    }

    /// Returns once every key `topology` needs is in force on its queues and exchanges; asks again every
    /// `interval` for up to `wait` (the management API reports a queue's policy up to its statistics interval
    /// late, 5 s by default), then throws an error listing each missing key by queue or exchange.
    public func waitUntilInForce(
        _ topology: RelayTopology, wait: Duration = .seconds(12), interval: Duration = .milliseconds(500),
        logger: Logger
    ) async throws(RelayError) {
        let clock = ContinuousClock()
        let deadline = clock.now + wait
        var logged = false
        while true {
            let problems = try await problems(topology)
            if problems.isEmpty { return }
            if clock.now >= deadline {
                throw RelayError(
                    code: .policiesNotInForce,
                    message: "RELAY_TOPOLOGY=policies, but the topology's policies are not in force in vhost "
                        + "\(vhost) (\(problems.count) key(s) missing; apply them with `klaviyo-relay setup` or "
                        + "import deploy/rabbitmq/definitions.json): "
                        + PolicyProblem.summary(problems))
            }
            if !logged {
                logged = true
                logger.info(
                    "waiting for the management API to report the topology's policies in force",
                    metadata: ["missing": "\(problems.count)", "first": "\(problems[0])"])
            }
            do {
                try await Task.sleep(for: interval)
            } catch {
                throw RelayError(code: .policiesNotInForce, message: "cancelled while checking the policies")
            }
        }
    }

    private func request(
        _ method: HTTPMethod, _ kind: String, _ name: String?, body: JSONValue? = nil, accept: Set<Int>,
        inVhost: Bool = true
    ) async throws(RelayError) -> (status: Int, json: JSONValue) {
        var url = "\(baseURL)/api/\(kind)" + (inVhost ? "/\(Self.segment(vhost))" : "")
        if let name { url += "/" + Self.segment(name) }
        var headers = HTTPHeaders()
        headers.add(name: "Accept", value: "application/json")
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        let response: HTTPResponse
        do {
            response = try await http.execute(
                HTTPRequest(method: method, url: url, headers: headers, body: body.map(JSONSerializer.serialize)))
        } catch {
            throw RelayError(
                code: .managementAPI, message: "RabbitMQ management API \(method.rawValue) \(url): \(error)",
                underlying: error, isRetriable: true)
        }
        guard accept.contains(response.status) else {
            let reason = String(response.bodyString.prefix(300))
            throw RelayError(
                code: .managementAPI,
                message: "RabbitMQ management API \(method.rawValue) \(url) answered \(response.status)"
                    + (response.status == 401 ? " (check the user and password of RELAY_RABBITMQ_MANAGEMENT_URL)" : "")
                    + (reason.isEmpty ? "" : ": \(reason)"),
                isRetriable: response.status >= 500)
        }
        guard response.status == 200, !response.body.isEmpty else { return (response.status, .null) }
        do {
            return (response.status, try JSONParser().parse(response.body))
        } catch {
            throw RelayError(
                code: .managementAPI,
                message: "RabbitMQ management API \(method.rawValue) \(url) answered with invalid JSON: \(error)")
        }
    }

    /// One path segment, percent-encoded (`/` → `%2F`).
    static func segment(_ text: String) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
