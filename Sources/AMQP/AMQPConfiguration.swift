/// How to reach and talk to the broker.
///
/// `description` never contains the password.
public struct AMQPConfiguration: Sendable, CustomStringConvertible {
    /// Broker host name or address.
    public var host: String
    /// Broker port; 5672 by default, 5671 for `amqps`.
    public var port: Int
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

    /// Creates a configuration from explicit values.
    public init(
        host: String = "127.0.0.1", port: Int? = nil, virtualHost: String = "/", username: String = "guest",
        password: String = "guest", useTLS: Bool = false
    ) {
        self.host = host
        self.port = port ?? (useTLS ? 5671 : 5672)
        self.virtualHost = virtualHost
        self.username = username
        self.password = password
        self.useTLS = useTLS
    }

    /// Parses `amqp[s]://user:pass@host:port/vhost`.
    ///
    /// Components are percent-decoded (`%2f` is `/`). Defaults: port 5672 (5671 for `amqps`), `guest`/`guest`,
    /// vhost `/`. An empty path (`amqp://host` or `amqp://host/`) means vhost `/`.
    public init(url: String) throws(AMQPError) {
        func invalid(_ why: String) -> AMQPError {
            AMQPError(code: .invalidURL, message: "invalid AMQP URL: \(why)", isRetriable: false)
        }
        var rest = Substring(url)
        if rest.lowercased().hasPrefix("amqps://") {
            useTLS = true
            rest = rest.dropFirst("amqps://".count)
        } else if rest.lowercased().hasPrefix("amqp://") {
            useTLS = false
            rest = rest.dropFirst("amqp://".count)
        } else {
            throw invalid("scheme must be amqp:// or amqps://")
        }
        var authority = rest
        var path: Substring? = nil
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        if authority.contains("?") || authority.contains("#") || (path?.contains("?") ?? false) {
            throw invalid("query strings and fragments are not supported")
        }
        username = "guest"
        password = "guest"
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            let rawUser = userInfo.firstIndex(of: ":").map { userInfo[..<$0] } ?? userInfo
            let rawPassword = userInfo.firstIndex(of: ":").map { userInfo[userInfo.index(after: $0)...] }
            guard let user = Self.percentDecode(rawUser) else { throw invalid("bad escape in user name") }
            username = user
            if let rawPassword {
                guard let secret = Self.percentDecode(rawPassword) else { throw invalid("bad escape in password") }
                password = secret
            }
        }
        var hostPart = hostPort
        var portPart: Substring? = nil
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw invalid("unterminated IPv6 literal") }
            hostPart = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                portPart = after.dropFirst()
            } else if !after.isEmpty {
                throw invalid("garbage after IPv6 literal")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            hostPart = hostPort[..<colon]
            portPart = hostPort[hostPort.index(after: colon)...]
        }
        guard let decodedHost = Self.percentDecode(hostPart), !decodedHost.isEmpty else {
            throw invalid("missing host")
        }
        host = decodedHost
        if let portPart {
            guard let value = Int(portPart), (1...65535).contains(value) else {
                throw invalid("bad port '\(portPart)'")
            }
            port = value
        } else {
            port = useTLS ? 5671 : 5672
        }
        if let path, !path.isEmpty {
            if path.contains("/") { throw invalid("vhost must be a single path segment (use %2f for '/')") }
            guard let vhost = Self.percentDecode(path) else { throw invalid("bad escape in vhost") }
            virtualHost = vhost
        } else {
            virtualHost = "/"
        }
    }

    /// Human readable, password redacted.
    public var description: String {
        let scheme = useTLS ? "amqps" : "amqp"
        return
            "\(scheme)://\(username):***@\(host):\(port)/\(virtualHost == "/" ? "%2f" : virtualHost) "
            + "(connectionName: \(connectionName), heartbeat: \(heartbeat))"
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
