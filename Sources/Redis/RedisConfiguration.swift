/// How to reach a Redis server (or a Redis Cluster) and how to size the connection pool.
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
    /// Maximum number of connections the client opens (lazily), per node in cluster mode. Default `8`.
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
        self.clusterNodes = []
        self.clusterRetryTimeout = .seconds(30)
    }

    /// Seed nodes of a Redis Cluster; empty (the default) for a single server at ``host``:``port``.
    ///
    /// In cluster mode the client reads the slot map from any seed, keeps a pool of connections per primary and
    /// routes each command by its key's hash slot (see ``RedisClient``). ``host`` and ``port`` then name the first
    /// seed and ``database`` is `0` (a cluster has one database).
    public var clusterNodes: [RedisEndpoint]
    /// In cluster mode, how long a command keeps being retried through a failover: connection failures,
    /// `CLUSTERDOWN` and `TRYAGAIN` refresh the slot map and retry (with backoff) until this much time has
    /// passed since the command was first sent. Default 30 s (a failover takes about `cluster-node-timeout`
    /// plus an election). Unused for a single server.
    public var clusterRetryTimeout: Duration

    /// Whether this configuration names a Redis Cluster (``clusterNodes`` is not empty).
    public var isCluster: Bool { !clusterNodes.isEmpty }

    /// Parses a single-server or a cluster URL.
    ///
    /// - `redis://[[user]:password@]host[:port][/db]`: one server.
    /// - `redis-cluster://[[user]:password@]host[:port],host[:port][,...][/0]`: a Redis Cluster given by seed
    ///   nodes (any of them is enough to read the slot map; list several so that one being down does not matter).
    ///
    /// User and password may be percent-encoded; in cluster mode they are used on every node. An IPv6 host is
    /// written in brackets (`redis://[::1]:6379`). The port defaults to 6379. Pool size and timeouts keep their
    /// defaults. TLS (`rediss://`, `rediss-cluster://`) is refused: this client has no TLS.
    public init(url: String) throws(RedisError) {
        func invalid(_ reason: String) -> RedisError {
            // The URL may hold a password: never echo it back.
            RedisError(code: .invalidURL, message: "invalid Redis URL: \(reason)", isRetriable: false)
        }
        let lowercased = url.lowercased()
        if lowercased.hasPrefix("rediss://") || lowercased.hasPrefix("rediss-cluster://") {
            throw invalid(
                "TLS (rediss:// or rediss-cluster://) is not supported by this client; use redis:// or "
                    + "redis-cluster:// on a private network")
        }
        let isCluster = lowercased.hasPrefix("redis-cluster://")
        let scheme = isCluster ? "redis-cluster://" : "redis://"
        guard lowercased.hasPrefix(scheme) else {
            throw invalid("it must start with redis:// (one server) or redis-cluster:// (a cluster's seed nodes)")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        self.init()

        // Path: /db
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let db = Int(path), db >= 0 else { throw invalid("the database must be a non-negative integer") }
                guard !isCluster || db == 0 else { throw invalid("a Redis Cluster has only database 0") }
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
        // Host and port, or the cluster's list of them.
        if isCluster {
            var seeds: [RedisEndpoint] = []
            for part in rest.split(separator: ",", omittingEmptySubsequences: false) {
                guard let seed = Self.endpoint(part) else { throw invalid("bad seed node (host[:port] expected)") }
                if !seeds.contains(seed) { seeds.append(seed) }
            }
            guard let first = seeds.first else { throw invalid("no seed node") }
            clusterNodes = seeds
            host = first.host
            port = first.port
        } else {
            guard let endpoint = Self.endpoint(rest) else {
                throw invalid(rest.isEmpty ? "the host is missing" : "bad host or port")
            }
            host = endpoint.host
            port = endpoint.port
        }
    }

    /// `host[:port]` or `[ipv6][:port]`, the port defaulting to 6379; `nil` when malformed.
    private static func endpoint(_ text: Substring) -> RedisEndpoint? {
        var host: String
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        } else {
            host = String(text)
        }
        guard !host.isEmpty else { return nil }
        var port = 6379
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { return nil }
            port = value
        }
        return RedisEndpoint(host: host, port: port)
    }

    /// A readable summary in which the password is replaced by `***`.
    public var description: String {
        var userinfo = ""
        if username != nil || password != nil {
            userinfo = (username ?? "") + (password != nil ? ":***" : "") + "@"
        }
        let timeouts = "connectTimeout: \(connectTimeout), commandTimeout: \(commandTimeout)"
        if isCluster {
            let seeds = clusterNodes.map(\.description).joined(separator: ",")
            return "RedisConfiguration(redis-cluster://\(userinfo)\(seeds), poolSize: \(poolSize) per node, "
                + "\(timeouts), clusterRetryTimeout: \(clusterRetryTimeout))"
        }
        let endpoint = RedisEndpoint(host: host, port: port)
        return "RedisConfiguration(redis://\(userinfo)\(endpoint)/\(database), poolSize: \(poolSize), \(timeouts))"
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
