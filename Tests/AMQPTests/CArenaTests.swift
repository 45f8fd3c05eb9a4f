import CRabbitMQ
import Testing

@testable import AMQP

/// The arena behind rabbitmq-c's arguments: what it hands out holds the bytes given, and a reset arena carves its
/// kept block again (the publish path reuses one arena for every publish).
@Suite("C arena")
struct CArenaTests {
    @Test func copiesHoldTheirBytesAndAResetArenaCarvesItsBlockAgain() throws {
        let arena = CArena()
        let first = arena.cString("exchange")
        #expect(String(cString: first) == "exchange")
        let body = arena.bytes(Array("payload".utf8))
        #expect(body.len == 7)
        #expect(Array(UnsafeRawBufferPointer(start: body.bytes, count: body.len)) == Array("payload".utf8))
        // A piece too large to carve gets its own allocation, freed by the reset.
        let large = arena.bytes([UInt8](repeating: 0x61, count: 4096))
        #expect(large.len == 4096)

        arena.reset()
        let again = arena.cString("routing.key")
        #expect(String(cString: again) == "routing.key")
        // The first piece after a reset starts where the kept block starts: the block was reused, not a new one.
        #expect(UnsafeRawPointer(again) == UnsafeRawPointer(first))
    }

    @Test func aResetArenaWithNothingCarvedStartsAFreshBlock() throws {
        let arena = CArena()
        arena.reset()
        let table = arena.table(["b": .string("2"), "a": .string("1")])
        #expect(table.num_entries == 2)
        let firstKey = try #require(table.entries?.pointee.key)
        let key = String(decoding: UnsafeRawBufferPointer(start: firstKey.bytes, count: firstKey.len), as: UTF8.self)
        #expect(key == "a")
    }
}
