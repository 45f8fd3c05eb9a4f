/// Redis Cluster's key → hash slot function: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.
///
/// The hash tag is the text between the first `{` and the first `}` after it, when that text is not empty:
/// `kr:{org_1}:conn` and `kr:{org_1}:lock` share a slot, so one Lua script may use both.
public enum RedisSlot {
    /// Number of hash slots in a Redis Cluster.
    public static let count = 16384

    /// The slot of a key given as UTF-8 text.
    public static func of(_ key: String) -> Int {
        of(bytes: Array(key.utf8))
    }

    /// The slot of a binary key.
    public static func of(bytes key: [UInt8]) -> Int {
        key.withUnsafeBufferPointer { buffer in
            var hashed = buffer[...]
            if let open = buffer.firstIndex(of: UInt8(ascii: "{")),
                let close = buffer[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
            {
                hashed = buffer[(open + 1)..<close]
            }
            return Int(crc16(hashed) & 0x3FFF)
        }
    }

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as in the Redis Cluster specification.
    static func crc16(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
