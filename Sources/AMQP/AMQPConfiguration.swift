/// How to reach and talk to the broker: one node, or the nodes of a cluster.
///
/// `description` never contains the password.
public struct AMQPConfiguration: Sendable, CustomStringConvertible {
    /// One broker node: the address the client opens its TCP (or TLS) connection to.
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        /// Host name or address.
        public var host: String
        /// AMQP (or AMQPS) port.
        public var port: Int

        /// Creates a node address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port`, an IPv6 address in brackets.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The nodes to connect to, never empty: one for a single broker, every node of a cluster otherwise. The
    /// client connects to one of them and moves to the next one after each failed attempt or lost connection.
    public var nodes: [Node]
    /// Whether each client starts at a random node (spreading many processes over a cluster's nodes) rather than
    /// at the first one; `true` by default. Either way it moves on in list order, wrapping around.
    public var startsAtRandomNode = true
    /// The first node's host name or address (the only node for a single broker).
    public var host: String {
        get { nodes[0].host }
        set { nodes[0].host = newValue }
    }
    /// The first node's port; 5672 by default, 5671 for `amqps`.
    public var port: Int {
        get { nodes[0].port }
        set { nodes[0].port = newValue }
    }
    /// Virtual host; `/` by default.
    public var virtualHost: String
    /// User name; `guest` by default.
    public var username: String
    /// Password; `guest` by default. Never logged.
    public var password: String
    /// Whether to use TLS (`amqps://`).
    public var useTLS: Bool
    /// A PEM file with the CA certificate(s) to trust; `nil` uses the system default store.
    public var tlsCACertificatePath: String?
    /// Whether to verify the broker's certificate chain.
    public var tlsVerifyPeer: Bool = true
    /// Whether to verify that the certificate matches ``host``.
    public var tlsVerifyHostname: Bool = true
    /// The heartbeat interval proposed to the broker; `.zero` disables heartbeats.
    public var heartbeat: Duration = .seconds(30)
    /// The time allowed for TCP connect plus the AMQP handshake.
    public var connectTimeout: Duration = .seconds(10)
    /// Sent as the client property `connection_name` (shown in the management UI).
    public var connectionName: String = "klaviyo-relay"
    /// The first delay before reconnecting after a loss; doubled after each failure, with jitter.
    public var reconnectInitialBackoff: Duration = .milliseconds(200)
    /// The upper bound of the reconnect delay.
    public var reconnectMaxBackoff: Duration = .seconds(10)
    /// How long the connection thread, woken by new work (a publish, an ack) after it had run out of work, waits
    /// before taking it: the work of many callers then goes out in one write and the broker handles it in one
    /// batch, at the cost of up to this much latency per call. `.zero` (the default) takes work at once;
    /// `klaviyo-relay consume` uses 1 ms (docs/operations.md, "Where a consumer's CPU goes").
    public var writeBatchingDelay: Duration = .zero

    /// Creates a configuration from explicit values.
    public init(
        host: String = "127.0.0.1", port: Int? = nil, virtualHost: String = "/", username: String = "guest",
        password: String = "guest", useTLS: Bool = false
    ) {
        self.nodes = [Node(host: host, port: port ?? (useTLS ? 5671 : 5672))]
        self.virtualHost = virtualHost
        self.username = username
        self.password = password
        self.useTLS = useTLS
    }

    /// Parses `amqp[s]://user:pass@host:port/vhost`, or a comma-separated list of such URLs, one per cluster node.
    ///
    /// Components are percent-decoded (`%2f` is `/`; a comma in a password is written `%2C`). Defaults: port 5672
    /// (5671 for `amqps`), `guest`/`guest`, vhost `/`. An empty path (`amqp://host` or `amqp://host/`) means vhost
    /// `/`. The URLs of a list differ only in host and port: they must agree on scheme, user, password and vhost.
    public init(url: String) throws(AMQPError) {
        let parts = url.split(separator: ",", omittingEmptySubsequences: false).map { part in
            String(part.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        }
        var parsed: [ParsedURL] = []
        for (index, part) in parts.enumerated() {
            do {
                parsed.append(try ParsedURL(part))
            } catch {
                throw Self.invalidURL(
                    parts.count == 1 ? error.why : "node \(index + 1) of \(parts.count): \(error.why)")
            }
        }
        let first = parsed[0]
        if let index = parsed.firstIndex(where: {
            $0.useTLS != first.useTLS || $0.username != first.username || $0.password != first.password
                || $0.virtualHost != first.virtualHost
        }) {
            throw Self.invalidURL(
                "node \(index + 1) differs from node 1 in scheme, user, password or vhost"
                    + " (the nodes of one cluster share them)")
        }
        nodes = parsed.map { Node(host: $0.host, port: $0.port) }
        useTLS = first.useTLS
        username = first.username
        password = first.password
        virtualHost = first.virtualHost
    }

    /// Human readable, password redacted.
    public var description: String {
        let scheme = useTLS ? "amqps" : "amqp"
        let vhost = virtualHost == "/" ? "%2f" : virtualHost
        return nodes.map { "\(scheme)://\(username):***@\($0)/\(vhost)" }.joined(separator: ",")
            + " (connectionName: \(connectionName), heartbeat: \(heartbeat))"
    }

    private static func invalidURL(_ why: String) -> AMQPError {
        AMQPError(code: .invalidURL, message: "invalid AMQP URL: \(why)", isRetriable: false)
    }

    /// Why one node URL does not parse (never contains the password).
    private struct URLProblem: Error {
        var why: String
        init(_ why: String) { self.why = why }
    }

    /// One `amqp[s]://user:pass@host:port/vhost`, decoded.
    private struct ParsedURL {
        var useTLS: Bool
        var username = "guest"
        var password = "guest"
        var host: String
        var port: Int
        var virtualHost = "/"

        init(_ url: String) throws(URLProblem) {
            var rest = Substring(url)
            if rest.lowercased().hasPrefix("amqps://") {
                useTLS = true
                rest = rest.dropFirst("amqps://".count)
            } else if rest.lowercased().hasPrefix("amqp://") {
                useTLS = false
                rest = rest.dropFirst("amqp://".count)
            } else {
                throw URLProblem(url.isEmpty ? "empty URL" : "scheme must be amqp:// or amqps://")
            }
            var authority = rest
            var path: Substring? = nil
            if let slash = rest.firstIndex(of: "/") {
                authority = rest[..<slash]
                path = rest[rest.index(after: slash)...]
            }
            if authority.contains("?") || authority.contains("#") || (path?.contains("?") ?? false) {
                throw URLProblem("query strings and fragments are not supported")
            }
            var hostPort = authority
            if let at = authority.lastIndex(of: "@") {
                let userInfo = authority[..<at]
                hostPort = authority[authority.index(after: at)...]
                let rawUser = userInfo.firstIndex(of: ":").map { userInfo[..<$0] } ?? userInfo
                let rawPassword = userInfo.firstIndex(of: ":").map { userInfo[userInfo.index(after: $0)...] }
                guard let user = AMQPConfiguration.percentDecode(rawUser) else {
                    throw URLProblem("bad escape in user name")
                }
                username = user
                if let rawPassword {
                    guard let secret = AMQPConfiguration.percentDecode(rawPassword) else {
                        throw URLProblem("bad escape in password")
                    }
                    password = secret
                }
            }
            var hostPart = hostPort
            var portPart: Substring? = nil
            if hostPort.hasPrefix("[") {
                guard let close = hostPort.firstIndex(of: "]") else { throw URLProblem("unterminated IPv6 literal") }
                hostPart = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
                let after = hostPort[hostPort.index(after: close)...]
                if after.hasPrefix(":") {
                    portPart = after.dropFirst()
                } else if !after.isEmpty {
                    throw URLProblem("garbage after IPv6 literal")
                }
            } else if let colon = hostPort.lastIndex(of: ":") {
                hostPart = hostPort[..<colon]
                portPart = hostPort[hostPort.index(after: colon)...]
            }
            guard let decodedHost = AMQPConfiguration.percentDecode(hostPart), !decodedHost.isEmpty else {
                throw URLProblem("missing host")
            }
            host = decodedHost
            if let portPart {
                guard let value = Int(portPart), (1...65535).contains(value) else {
                    throw URLProblem("bad port '\(portPart)'")
                }
                port = value
            } else {
                port = useTLS ? 5671 : 5672
            }
            if let path, !path.isEmpty {
                if path.contains("/") { throw URLProblem("vhost must be a single path segment (use %2f for '/')") }
                guard let vhost = AMQPConfiguration.percentDecode(path) else { throw URLProblem("bad escape in vhost") }
                virtualHost = vhost
            }
        }
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
