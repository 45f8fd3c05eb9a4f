/// A Lua script run with `EVALSHA`, loaded with `SCRIPT LOAD` only when the server answers `NOSCRIPT`.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The lowercase hex SHA-1 of ``source``: the name Redis knows the script by.
    public let sha1: String

    /// Creates a script; the SHA-1 is computed locally, so no round trip is needed.
    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(Array(source.utf8))
    }
}
