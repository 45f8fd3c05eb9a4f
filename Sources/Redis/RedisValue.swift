/// A reply from Redis (RESP2).
public enum RedisValue: Sendable, Hashable {
    /// A nil bulk string or nil array.
    case null
    /// A status reply such as `OK` or `PONG`.
    case simpleString(String)
    /// A binary-safe bulk string.
    case bulkString([UInt8])
    /// An integer reply.
    case integer(Int64)
    /// A multi-bulk reply.
    case array([RedisValue])

    /// The bulk or simple string decoded as UTF-8 (invalid sequences are replaced by U+FFFD); `nil` for other cases.
    ///
    /// Use the `.bulkString` payload directly when the exact bytes matter.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The integer, or a string that holds a decimal integer; `nil` otherwise.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .simpleString, .bulkString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    /// The elements of an array reply; `nil` otherwise.
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is a nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
