/// How to reach a Redis server and how to size the connection pool.
public struct RedisConfiguration: Sendable, CustomStringConvertible {
    /// Host name or IP address of the server. Default `127.0.0.1`.
    public var host: String
    /// TCP port. Default `6379`.
    public var port: Int
    /// ACL user name for `AUTH`; `nil` uses the default user.
    public var username: String?
    /// Password for `AUTH`; `nil` sends no `AUTH`. Never logged nor shown by ``description``.
    public var password: String?
    /// Database index selected with `SELECT` on connect. Default `0`.
    public var database: Int
    /// Maximum number of connections the client opens (lazily). Default `8`.
    public var poolSize: Int
    /// Time allowed to establish a TCP connection. Default 2 s.
    public var connectTimeout: Duration
    /// Time allowed for one command (or one pipeline) to be answered. Default 2 s.
    public var commandTimeout: Duration

    /// Creates a configuration from its parts; every parameter has the documented default.
    public init(
        host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
        database: Int = 0, poolSize: Int = 8, connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(2)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// User and password may be percent-encoded. An IPv6 host is written in brackets (`redis://[::1]:6379`).
    /// Pool size and timeouts keep their defaults.
    public init(url: String) throws(RedisError) {
        func invalid(_ reason: String) -> RedisError {
            // The URL may hold a password: never echo it back.
            RedisError(code: .invalidURL, message: "invalid Redis URL: \(reason)", isRetriable: false)
        }
        let scheme = "redis://"
        guard url.lowercased().hasPrefix(scheme) else { throw invalid("it must start with redis://") }
        var rest = Substring(url.dropFirst(scheme.count))
        self.init()

        // Path: /db
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let db = Int(path), db >= 0 else { throw invalid("the database must be a non-negative integer") }
                database = db
            }
        }
        // Userinfo: [user]:password@ or user@
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let user: Substring
            var pass: Substring?
            if let colon = userinfo.firstIndex(of: ":") {
                user = userinfo[..<colon]
                pass = userinfo[userinfo.index(after: colon)...]
            } else {
                user = userinfo
            }
            guard let decodedUser = Self.percentDecoded(user) else { throw invalid("bad percent-encoding in user") }
            username = decodedUser.isEmpty ? nil : decodedUser
            if let pass {
                guard let decoded = Self.percentDecoded(pass) else { throw invalid("bad percent-encoding in password") }
                password = decoded
            }
        }
        // Host and port.
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { throw invalid("the host is missing") }
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { throw invalid("bad port") }
            port = value
        }
    }

    /// A readable summary in which the password is replaced by `***`.
    public var description: String {
        var userinfo = ""
        if username != nil || password != nil {
            userinfo = (username ?? "") + (password != nil ? ":***" : "") + "@"
        }
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "RedisConfiguration(redis://\(userinfo)\(hostText):\(port)/\(database), poolSize: \(poolSize), "
            + "connectTimeout: \(connectTimeout), commandTimeout: \(commandTimeout))"
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
