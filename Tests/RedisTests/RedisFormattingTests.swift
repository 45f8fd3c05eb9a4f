import Testing

@testable import Redis

/// The RESP encoding of pipelines given as strings (no server): byte for byte what the byte-array path writes.
@Suite("Redis: RESP formatting")
struct RedisFormattingTests {
    @Test func stringPipelinesEncodeAsTheirUTF8Bytes() {
        let commands: [[String]] = [
            ["HSET", "kr:{org_1}:idem:c-1", "result", #"{"ok":true,"name":"Zoë 👩‍💻"}"#, "published", "0"],
            ["SET", "k", "", "PX", "86400000"],
            ["PING"],
            ["SET", "long", String(repeating: "x", count: 12_345)],
        ]
        let encoded = RedisFormattedCommands(commands)
        #expect(encoded.count == 4)
        let expected = commands.flatMap { RedisContext.formatted($0.map { Array($0.utf8) }) }
        #expect(encoded.bytes == expected)
        #expect(encoded.bytes.count == commands.map(RedisContext.formattedSize).reduce(0, +))
        #expect(
            Array(RedisFormattedCommands([["SET", "a", "é"]]).bytes)
                == Array("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$2\r\né\r\n".utf8))
        #expect(RedisFormattedCommands([]).bytes.isEmpty)
    }
}
