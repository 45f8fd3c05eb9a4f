import Klaviyo
import Relay
import Testing

@Suite("Command decoder")
struct CommandDecoderTests {
    let decoder = CommandDecoder(maxMessageBytes: 64 * 1024)

    func envelope(
        _ type: String = "profile.upsert", payload: String = #"{"profile":{"email":"a@example.com"}}"#
    ) -> [UInt8] {
        Array(
            #"{"id":"cmd-1","type":"\#(type)","account_id":"org_42","created_at":"2026-11-29T12:00:00Z","payload":\#(payload)}"#
                .utf8)
    }

    func rejection(_ body: [UInt8]) -> CommandRejection? {
        if case .failure(let rejection) = decoder.decode(body) { return rejection }
        return nil
    }

    @Test func decodesAnUpsert() throws {
        guard case .success(let command) = decoder.decode(envelope()) else {
            Issue.record("expected success")
            return
        }
        #expect(command.id == "cmd-1")
        #expect(command.type == .profileUpsert)
        #expect(command.accountID == "org_42")
        guard case .profileUpsert(let payload) = command.payload else {
            Issue.record("wrong payload")
            return
        }
        #expect(payload.attributes["email"] == "a@example.com")
    }

    @Test func classifiesEachKindOfBadInput() throws {
        #expect(rejection(Array("not json".utf8))?.code == .notJSON)
        #expect(rejection([0x7B, 0xFF, 0x7D])?.code == .notJSON)
        #expect(rejection(Array(repeating: 0x20, count: 64 * 1024 + 1))?.code == .tooLarge)
        #expect(rejection(Array("[1,2]".utf8))?.code == .schemaInvalid)
        let unknown = try #require(rejection(envelope("profile.delete")))
        #expect(unknown.code == .unknownType)
        #expect(unknown.commandID == "cmd-1")
        #expect(unknown.accountID == "org_42")
        let badEmail = try #require(rejection(envelope(payload: #"{"profile":{"email":"nope"}}"#)))
        #expect(badEmail.code == .schemaInvalid)
        #expect(badEmail.detail == "/payload/profile/email: is not a valid email address")
        #expect(badEmail.type == "profile.upsert")
    }

    @Test(arguments: [
        ("profile.get", #"{"profile_id":"%"}"#),
        ("profile.update", #"{"profile_id":"%","profile":{"first_name":"A"}}"#),
        ("profile.upsert", #"{"profile_id":"%","profile":{"email":"a@example.com"}}"#),
        ("campaign.get", #"{"campaign_id":"%"}"#), ("campaign.send", #"{"campaign_id":"%"}"#),
        ("campaign.cancel_send", #"{"campaign_id":"%","action":"cancel"}"#),
        ("flow.update_status", #"{"flow_id":"%","status":"live"}"#),
        ("list.add_profiles", #"{"list_id":"%","profile_ids":["p1"]}"#),
        ("list.add_profiles", #"{"list_id":"L1","profile_ids":["p1","%"]}"#),
    ])
    func dotSegmentsAreNotResourceIDs(type: String, payload: String) throws {
        // `.` and `..` would be resolved into another URL path (`/api/profiles/..` is `/api/`).
        for dots in [".", ".."] {
            let refused = try #require(
                rejection(envelope(type, payload: payload.replacingOccurrences(of: "%", with: dots))),
                "\(type) accepted \(dots)")
            #expect(refused.code == .schemaInvalid)
            #expect(refused.detail.contains("must be a resource id"), "\(refused.detail)")
        }
        // The same shape with a real id decodes.
        if case .failure(let rejection) = decoder.decode(
            envelope(type, payload: payload.replacingOccurrences(of: "%", with: "01HXYZ..a")))
        {
            Issue.record("a valid id was refused: \(rejection.detail)")
        }
    }

    @Test func thePayloadDigestIgnoresKeyOrderAndSpacingButNotContent() throws {
        func digest(_ body: String) throws -> String {
            guard case .success(let command) = decoder.decode(Array(body.utf8)) else {
                throw CommandRejection(code: .schemaInvalid, detail: "did not decode")
            }
            return command.payloadDigest
        }
        let base = try digest(
            #"{"id":"c","type":"profile.upsert","account_id":"a","created_at":"2026-11-29T12:00:00Z","payload":{"profile":{"email":"a@example.com","first_name":"A"}}}"#
        )
        let reordered = try digest(
            #"{"payload":{"profile":{"first_name":"A", "email":"a@example.com"}},"created_at":"2026-12-01T00:00:00Z","id":"c","type":"profile.upsert","account_id":"a"}"#
        )
        let changed = try digest(
            #"{"id":"c","type":"profile.upsert","account_id":"a","created_at":"2026-11-29T12:00:00Z","payload":{"profile":{"email":"a@example.com","first_name":"B"}}}"#
        )
        #expect(base == reordered)
        #expect(base != changed)
        #expect(base.count == 64)
    }

    @Test func everyContractTypeHasAHandler() throws {
        for type in CommandType.allCases {
            let payload = type == .connectionDisconnect ? #"{"reason":"customer left"}"# : "{}"
            if case .success(let command) = decoder.decode(envelope(type.rawValue, payload: payload)),
                case .unsupported = command.payload
            {
                Issue.record("\(type.rawValue) decodes as unsupported")
            }
        }
        guard
            case .success(let command) = decoder.decode(envelope("connection.disconnect", payload: #"{"reason":"x"}"#)),
            case .connectionDisconnect(let reason) = command.payload
        else {
            Issue.record("expected a connection.disconnect payload")
            return
        }
        #expect(reason == "x")
        if case .failure(let rejection) = decoder.decode(envelope("connection.disconnect", payload: #"{"force":true}"#))
        {
            #expect(rejection.code == .schemaInvalid)
        } else {
            Issue.record("unknown members must be refused")
        }
    }

    @Test func deepNestingAndHugeNumbersAreRejectedNotCrashing() {
        let deep = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        #expect(
            rejection(envelope(payload: #"{"profile":{"email":"a@example.com","properties":{"x":\#(deep)}}}"#))?.code
                == .notJSON)
        #expect(
            rejection(envelope(payload: #"{"profile":{"email":"a@example.com","properties":{"x":1e400}}}"#))?.code
                == .notJSON)
    }

    /// Property-based: random mutations of a valid command never crash the decoder, and every rejection
    /// names a code and a non-empty detail.
    @Test func mutatedInputsAlwaysDecodeOrRejectWithAReason() {
        var generator = SplitMix64(seed: 0x5EED)
        let base = envelope(
            payload: #"{"profile":{"email":"a@example.com","first_name":"Ann","properties":{"n":[1,2,{"k":null}]}}}"#)
        var rejected = 0
        for _ in 0..<3000 {
            var bytes = base
            for _ in 0..<Int(generator.next() % 4 + 1) {
                let position = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 4 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes.remove(at: position)
                case 2: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
                default: bytes.insert(contentsOf: bytes[position..<min(bytes.count, position + 8)], at: position)
                }
            }
            switch decoder.decode(bytes) {
            case .success: break
            case .failure(let rejection):
                rejected += 1
                #expect(!rejection.detail.isEmpty)
            }
        }
        #expect(rejected > 1000, "most random mutations must be caught")
    }
}

/// A tiny deterministic PRNG for property tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
