import Klaviyo
import Testing

@Suite("JSON parser and serializer")
struct JSONParserTests {
    @Test func parsesAllValueKinds() throws {
        let value = try JSONValue.parse(
            Array(#" {"a":[1,-2.5,1e3,true,false,null,"x\"\\\/\n\u00e9\ud83d\ude00"],"b":{}} "#.utf8))
        #expect(value["a"]?.arrayValue?[0] == .int(1))
        #expect(value["a"]?.arrayValue?[1] == .double(-2.5))
        #expect(value["a"]?.arrayValue?[2] == .double(1000))
        #expect(value["a"]?.arrayValue?[6] == .string("x\"\\/\né😀"))
        #expect(value["b"] == .object([:]))
    }

    @Test func roundTripsThroughTheSerializer() throws {
        let value: JSONValue = ["z": [1, 2.5, "tab\there", nil, true], "a": ["nested": ["deep": "ü\u{01}"]]]
        let bytes = value.jsonBytes()
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix(#"{"a":"#), "keys are sorted")
        #expect(try JSONValue.parse(bytes) == value)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"unterminated", "\"\u{01}\"", "{\"a\" 1}", "[1] x",
        "\"\\ud800\"", "\"\\x\"", "1e999", "{\"a\":1,\"a\":2}", "NaN",
    ])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParser.Failure.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
        // After ASCII (a key, then a value cut off mid-sequence): the ASCII-only shortcut must not apply.
        let badKey = Array(#"{"k"#.utf8) + [0xFF] + Array(#"":1}"#.utf8)
        #expect(throws: JSONParser.Failure.self) { try JSONValue.parse(badKey) }
        let cutOff = Array(#""ab"#.utf8) + [0xF0, 0x9F, 0x98, 0x22]
        #expect(throws: JSONParser.Failure.self) { try JSONValue.parse(cutOff) }
    }

    @Test func readsUnescapedNonASCIIAndASCIIStrings() throws {
        let value = try JSONValue.parse(Array(#"{"naïve":"café 😀","plain":"ascii only"}"#.utf8))
        #expect(value["naïve"] == .string("café 😀"))
        #expect(value["plain"] == .string("ascii only"))
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParser.Failure.self) { try JSONValue.parse(Array(deep.utf8), maxDepth: 64) }
        let fine = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try JSONValue.parse(Array(fine.utf8), maxDepth: 64)
    }

    @Test func hugeIntegersBecomeDoubles() throws {
        #expect(try JSONValue.parse(Array("123456789012345678901234567890".utf8)) == .double(1.2345678901234568e29))
        #expect(try JSONValue.parse(Array("-9223372036854775808".utf8)) == .int(Int64.min))
    }

    static let profileAnswer = #"""
        {"data":{"type":"profile","id":"01H","attributes":{"email":"a@b.co","n":[1,2.5e3,{"x":null}],
        "t":"é\u00e9\"","b":true},"links":{"self":"x"}},"links":{"self":"y"}}
        """#

    static let dataID = JSONProjection.members(["data": .members(["type": .all, "id": .all])])

    @Test func aProjectionBuildsOnlyTheMembersItNames() throws {
        let value = try JSONValue.parse(Array(Self.profileAnswer.utf8), keeping: Self.dataID)
        #expect(value == ["data": ["type": "profile", "id": "01H"]])
        // The same document in full still has everything the projection left out.
        let full = try JSONValue.parse(Array(Self.profileAnswer.utf8))
        #expect(full["data"]?["attributes"]?["t"] == "éé\"")
        #expect(full["links"]?["self"] == "y")
        // A member named by `.all` is built whole, and a non-object value is built as it is.
        let whole = try JSONValue.parse(
            Array(Self.profileAnswer.utf8), keeping: .members(["data": .members(["attributes": .all])]))
        #expect(whole["data"]?["attributes"] == full["data"]?["attributes"])
        #expect(try JSONValue.parse(Array("[1,2]".utf8), keeping: Self.dataID) == [1, 2])
    }

    /// What a projection skips must still be JSON: a broken answer is an error whichever parts the caller reads.
    @Test(arguments: [
        #"{"data":{"id":"1"},"x":[1,]}"#, #"{"data":{"id":"1"},"x":{"a" 1}}"#, #"{"x":01,"data":{}}"#,
        #"{"x":"\#u{01}","data":{}}"#, #"{"x":"\q","data":{}}"#, #"{"x":tru,"data":{}}"#, #"{"x":1.}"#,
        #"{"x":"unterminated}"#, #"{"data":{"id":"1","id":"2"}}"#, #"{"data":{}} x"#,
    ])
    func aProjectionStillRejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONValue.parse(Array(text.utf8), keeping: Self.dataID) }
    }

    @Test func aProjectionChecksSkippedStringsAndNesting() throws {
        // Invalid UTF-8 inside a skipped member.
        let invalid = Array(#"{"x":""#.utf8) + [0xC3, 0x28] + Array(#"","data":{}}"#.utf8)
        #expect(throws: JSONParser.Failure.self) { try JSONValue.parse(invalid, keeping: Self.dataID) }
        let deep = #"{"x":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
        #expect(throws: JSONParser.Failure.self) {
            try JSONValue.parse(Array(deep.utf8), maxDepth: 64, keeping: Self.dataID)
        }
        let fine = #"{"x":"# + String(repeating: "[", count: 63) + String(repeating: "]", count: 63) + "}"
        #expect(try JSONValue.parse(Array(fine.utf8), maxDepth: 64, keeping: Self.dataID) == .object([:]))
    }
}
