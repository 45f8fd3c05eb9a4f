import Crypto

/// A Lua script run with `EVALSHA`, loaded with `SCRIPT LOAD` only when the server answers `NOSCRIPT`.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The lowercase hex SHA-1 of ``source`` (swift-crypto's `Insecure.SHA1`, not for security): the name Redis
    /// knows the script by.
    public let sha1: String

    /// Creates a script; the SHA-1 is computed locally, so no round trip is needed.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
