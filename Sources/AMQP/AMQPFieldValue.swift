/// An AMQP field table: header and argument maps.
public typealias AMQPTable = [String: AMQPFieldValue]

/// A value in an AMQP field table (message headers, queue/exchange/binding arguments).
///
/// Every integer width the broker may send is decoded as ``int(_:)`` and every float as ``double(_:)``;
/// encoding uses 64-bit signed integers (`l`) and doubles (`d`).
public indirect enum AMQPFieldValue: Sendable, Hashable {
    /// A long string (`S`).
    case string(String)
    /// A boolean (`t`).
    case bool(Bool)
    /// A signed integer of any width; encoded as `l` (int64).
    case int(Int64)
    /// A floating point number; encoded as `d` (double). Decimals are decoded into this too.
    case double(Double)
    /// A timestamp in seconds since the Unix epoch (`T`).
    case timestamp(UInt64)
    /// A nested table (`F`).
    case table(AMQPTable)
    /// An array (`A`), e.g. the `x-death` header is an array of tables.
    case array([AMQPFieldValue])
    /// Raw bytes (`x`).
    case bytes([UInt8])
    /// No value (`V`).
    case void
}
