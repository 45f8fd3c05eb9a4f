import Foundation
import Klaviyo
import Logging
import RelayTestSupport
import Testing

/// Feeds the Klaviyo and OAuth clients absurd answers through the transport seam: random and extreme status
/// codes, `Retry-After` values and JSON bodies. Never a crash (a trap would end the test process); always a
/// value or a typed error; every wait a caller would take from an answer stays within its bound.
@Suite("Hostile Klaviyo answers (fuzz)")
struct HostileAnswerFuzzTests {
    static let cases = 3000

    static func client(_ transport: RecordingTransport) -> KlaviyoClient {
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        return KlaviyoClient(baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "fuzz", logger: logger)
    }

    static let statuses = [
        Int.min, -1, 0, 1, 99, 100, 199, 200, 201, 202, 204, 299, 300, 304, 400, 401, 403, 404, 409, 413, 429, 500,
        502, 503, 504, 524, 599, 600, 999, 1_000_000, Int.max,
    ]

    static let retryAfters = [
        "100000000000000000", "9223372036854775807", "9223372036854775808", "18446744073709551616",
        "99999999999999999999999999999999999999999999", "-5", "-0", "0", "1", "1.5", "0.0001", "86400", "86401",
        "1e10", "NaN", "nan", "inf", "Infinity", "", "   7  ", "\t3\r", "Wed, 21 Oct 2015 07:28:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "Mon, 99 Foo 2026 25:61:61 GMT",
        "5, 10", "abc", "0x10", "٣", "1 000", String(repeating: "9", count: 5000),
    ]

    /// A random `Retry-After` value: a listed extreme, a random number, or random printable junk.
    static func retryAfter(_ random: inout SeededRandom) -> String {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: return String(Int64.random(in: .min ... .max, using: &random))
        case 1: return String(Double.random(in: -1e30...1e30, using: &random))
        case 2:
            return String(
                decoding: random.bytes(Int.random(in: 0...12, using: &random)).map { $0 % 95 + 32 },
                as: UTF8.self)
        default: return random.pick(retryAfters)
        }
    }

    static let numbers = [
        "1e308", "-1e308", "1e20", "-1e20", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "123456789012345678901234567890", "0.1", "-0", "5e-324", "1e400", "\"NaN\"", "\"Infinity\"", "\"-Infinity\"",
        "\"1e20\"", "null", "true", "[]", "{}",
    ]

    /// A random JSON value (as text) of depth at most `depth`, biased to Klaviyo's member names and absurd numbers.
    static func json(_ random: inout SeededRandom, depth: Int) -> String {
        let names = [
            "data", "errors", "id", "type", "attributes", "links", "next", "status", "code", "detail", "title",
            "source", "pointer", "meta", "email", "name", "failed_count", "total_count", "completed_count", "self",
        ]
        switch Int.random(in: 0..<(depth > 0 ? 6 : 3), using: &random) {
        case 0: return random.pick(numbers)
        case 1: return "\"" + random.pick(names + ["", "x", "profile", "list", "\\u0000", "https://evil/"]) + "\""
        case 2: return String(Int64.random(in: .min ... .max, using: &random))
        case 3:
            let count = Int.random(in: 0...3, using: &random)
            return "[" + (0..<count).map { _ in json(&random, depth: depth - 1) }.joined(separator: ",") + "]"
        default:
            let count = Int.random(in: 0...4, using: &random)
            return "{"
                + (0..<count).map { _ in "\"\(random.pick(names))\":" + json(&random, depth: depth - 1) }
                .joined(separator: ",") + "}"
        }
    }

    /// A random body: JSON:API-shaped with wrong types and absurd numbers, deeply nested, random bytes, or empty.
    static func body(_ random: inout SeededRandom) -> [UInt8] {
        switch Int.random(in: 0..<7, using: &random) {
        case 0: return random.bytes(Int.random(in: 0...64, using: &random))
        case 1:
            let depth = random.pick([63, 64, 65, 1000, 100_000])
            return Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
        case 2: return []
        case 3:
            return Array(
                (#"{"errors":[{"status":"# + random.pick(numbers) + #","code":"# + random.pick(numbers) + #","detail":"#
                    + json(&random, depth: 2) + "}]}").utf8)
        case 4:
            return Array(
                (#"{"data":{"type":"profile","id":"# + random.pick(numbers + ["\"01H\""]) + #","attributes":"#
                    + json(&random, depth: 3) + "}}").utf8)
        default: return Array(json(&random, depth: 4).utf8)
        }
    }

    /// Answers of the right JSON:API shape for the fuzzed operations, with absurd numbers where Klaviyo sends
    /// numbers (and where it does not); `%N` is replaced by a random extreme number.
    static let plausibleBodies = [
        #"{"data":[{"type":"account","id":"AbC","attributes":{"contact_information":{"organization_name":"Org"},"timezone":%N,"preferred_currency":%N}}]}"#,
        #"{"data":{"type":"profile","id":"01H","attributes":{"email":"a@example.com","properties":{"n":%N}}}}"#,
        #"{"data":[{"type":"list","id":"L1","attributes":{"name":"VIP","created":%N}}],"links":{"next":null}}"#,
        #"{"data":{"type":"list","id":"L1","attributes":{"name":%N}}}"#,
        #"{"data":[{"type":"flow","id":"F1","attributes":{"status":"live","n":%N}}],"links":{"next":"https://a.klaviyo.com/api/flows?page%5Bcursor%5D=x"}}"#,
        #"{"data":{"type":"profile-bulk-import-job","id":"job-1","attributes":{"status":"complete","failed_count":%N,"total_count":%N}}}"#,
        #"{"data":[{"type":"import-error","id":"e1","attributes":{"code":%N,"original_payload":{"n":%N}}}],"links":{"next":%N}}"#,
    ]

    static func plausibleBody(_ random: inout SeededRandom) -> [UInt8] {
        var text = random.pick(plausibleBodies)
        while let range = text.range(of: "%N") { text.replaceSubrange(range, with: random.pick(numbers)) }
        return Array(text.utf8)
    }

    static func response(_ random: inout SeededRandom) -> KlaviyoHTTPResponse {
        if random.chance(0.3) {
            let headers: [(name: String, value: String)] = [
                ("Content-Type", "application/vnd.api+json"), ("RateLimit-Remaining", retryAfter(&random)),
                ("RateLimit-Reset", retryAfter(&random)),
            ]
            return KlaviyoHTTPResponse(
                status: random.pick([200, 201, 202, 204]), headers: headers, body: plausibleBody(&random))
        }
        let status = random.chance(0.8) ? random.pick(statuses) : Int.random(in: -1000...1000, using: &random)
        var headers: [(name: String, value: String)] = [("Content-Type", "application/vnd.api+json")]
        for _ in 0..<Int.random(in: 0...2, using: &random) {
            headers.append((random.pick(["Retry-After", "retry-after", "RETRY-AFTER"]), retryAfter(&random)))
        }
        if random.chance(0.3) {
            headers.append((random.pick(["RateLimit-Remaining", "RateLimit-Reset"]), retryAfter(&random)))
        }
        return KlaviyoHTTPResponse(status: status, headers: headers, body: body(&random))
    }

    /// The bound every caller may rely on for any ``KlaviyoError``.
    static func checkBounds(_ error: KlaviyoError, _ label: String) {
        if let retryAfter = error.retryAfter {
            #expect(retryAfter >= .zero && retryAfter <= Clamp.maxRetryAfter, "\(label): retryAfter \(retryAfter)")
        }
        if case .retryAfter(let wait) = error.retryDecision {
            #expect(wait >= .zero && wait <= Clamp.maxRetryAfter, "\(label): retry decision waits \(wait)")
        }
        #expect(!error.description.contains("pk_fuzz_secret"), "\(label): the API key leaked into the error")
    }

    @Test func clientNeverTrapsOnHostileAnswers() async {
        let seed = SeededRandom.seed(default: 0x5EED_0001)
        print("HostileAnswerFuzzTests.clientNeverTrapsOnHostileAnswers seed \(seed) (FUZZ_SEED to reproduce)")
        var random = SeededRandom(seed: seed)
        let credential = KlaviyoCredential.apiKey("pk_fuzz_secret")
        var values = 0
        var errors = 0
        for index in 0..<Self.cases {
            let answer = Self.response(&random)
            let label = "seed \(seed) case \(index) status \(answer.status) headers \(answer.headers)"
            let transport = RecordingTransport { _ in answer }
            let client = Self.client(transport)
            let operation = index % 8
            var succeeded = false
            do throws(KlaviyoError) {
                switch operation {
                case 0: _ = try await client.getAccount(credential: credential)
                case 1:
                    _ = try await client.upsertProfile(attributes: ["email": "a@example.com"], credential: credential)
                case 2: _ = try await client.findLists(name: "VIP", credential: credential)
                case 3: _ = try await client.createList(name: "VIP", credential: credential)
                case 4: _ = try await client.allFlows(credential: credential, maxPages: 3)
                case 5:
                    _ = try await client.resource(
                        KlaviyoClient.getBulkImportJobRequest(id: "job-1"), credential: credential)
                case 6: _ = try await client.bulkImportErrors(jobID: "job-1", credential: credential, maxPages: 3)
                default:
                    _ = try await client.getAccountPatiently(
                        credential: credential, attempts: 2, maxWait: .milliseconds(2))
                }
                succeeded = true
            } catch {
                errors += 1
                Self.checkBounds(error, label)
                if !(200..<300).contains(answer.status) {
                    #expect(error.status == answer.status, "\(label): error status \(String(describing: error.status))")
                }
                if answer.status == 429 { #expect(error.code == .throttled, "\(label): \(error.code)") }
            }
            if succeeded {
                values += 1
                #expect((200..<300).contains(answer.status), "\(label): a non-2xx answer produced a value")
            }
        }
        // Both paths were exercised (the generator is not so hostile that nothing ever parses).
        #expect(values > 0 && errors > 0, "values \(values), errors \(errors)")
        print("HostileAnswerFuzzTests: \(values) values, \(errors) errors")
    }

    @Test func retryAfterIsAlwaysWithinOneDay() throws {
        let seed = SeededRandom.seed(default: 0x5EED_0002)
        print("HostileAnswerFuzzTests.retryAfterIsAlwaysWithinOneDay seed \(seed)")
        var random = SeededRandom(seed: seed)
        for index in 0..<Self.cases {
            var headers: [(name: String, value: String)] = []
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                headers.append(("Retry-After", Self.retryAfter(&random)))
            }
            let answer = KlaviyoHTTPResponse(status: 429, headers: headers, body: Self.body(&random))
            do {
                _ = try KlaviyoClient.interpret(answer, operationID: "create_event", usedOAuth: false)
                Issue.record("seed \(seed) case \(index): a 429 produced a value")
            } catch {
                Self.checkBounds(error, "seed \(seed) case \(index) \(headers)")
                #expect(error.code == .throttled)
            }
        }
    }

    /// Regression: `Retry-After: 100000000000000000` became `.seconds(1e17)`, and the first whole-millisecond
    /// conversion of the retry wait (`seconds * 1000`, as the processor logs it) trapped the consumer.
    @Test func hugeRetryAfterIsOneDay() throws {
        let answer = RecordingTransport.json(
            429, #"{"errors":[{"status":429,"code":"throttled","detail":"slow down"}]}"#,
            headers: [("Retry-After", "100000000000000000")])
        do {
            _ = try KlaviyoClient.interpret(answer, operationID: "create_event", usedOAuth: false)
            Issue.record("a 429 produced a value")
        } catch {
            #expect(error.retryAfter == Clamp.maxRetryAfter)
            #expect(error.retryDecision == .retryAfter(.seconds(86_400)))
            let (seconds, _) = try #require(error.retryAfter).components
            #expect(seconds * 1000 == 86_400_000)
        }
    }

    static let retryAfterCases: [(String, Int64?)] = [
        ("100000000000000000", 86_400_000), ("99999999999999999999999999999", 86_400_000), ("30", 30_000),
        ("0", 0), (" 2 ", 2000), ("1.5", 1500), ("0.0001", 1), ("86401", 86_400_000), ("5, 10", 5000),
        ("-5", nil), ("abc", nil), ("NaN", nil), ("inf", nil), ("", nil), ("1e3", nil), ("0x10", nil),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0), ("Mon, 30 Nov 2026 12:00:10 GMT", 10_000),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 86_400_000), ("Mon, 30 Nov 2026 25:00:00 GMT", nil),
    ]

    @Test(arguments: retryAfterCases)
    func retryAfterForms(text: String, milliseconds: Int64?) {
        // 2026-11-30T12:00:00Z
        let now: Int64 = 1_796_040_000
        #expect(Clamp.retryAfter(text, nowEpochSeconds: now) == milliseconds.map { .milliseconds($0) })
    }

    // MARK: - OAuth

    static func oauthClient(_ transport: RecordingTransport) -> KlaviyoOAuthClient {
        KlaviyoOAuthClient(
            baseURL: "https://a.klaviyo.com", clientID: "client-fuzz", clientSecret: "cs_fuzz_secret",
            transport: transport, userAgent: "fuzz")
    }

    static let expiresIns = [
        "1e20", "-1e20", "-5", "0", "3600", "3599.9", "\"abc\"", "\"3600\"", "\"1e20\"", "\" 60 \"", "\"-5\"",
        "9223372036854775807", "-9223372036854775808", "18446744073709551616", "1e308", "-1e308", "5e-324", "null",
        "true", "[3600]", "{\"seconds\":3600}", "\"NaN\"", "\"Infinity\"", "\"99999999999999999999999\"",
    ]

    static func tokenBody(_ random: inout SeededRandom) -> [UInt8] {
        if random.chance(0.2) { return body(&random) }
        var members: [String] = []
        if random.chance(0.9) {
            members.append(#""access_token":"# + random.pick(["\"at_new\"", "\"\"", "1e20", "null", "[\"x\"]"]))
        }
        if random.chance(0.9) {
            members.append(#""expires_in":"# + (random.chance(0.8) ? random.pick(expiresIns) : json(&random, depth: 3)))
        }
        if random.chance(0.5) { members.append(#""refresh_token":"# + random.pick(["\"rt_new\"", "7", "null"])) }
        if random.chance(0.3) { members.append(#""error":"# + random.pick(["\"invalid_grant\"", "1e308", "{}"])) }
        if random.chance(0.3) { members.append(#""scope":"# + json(&random, depth: 2)) }
        return Array(("{" + members.joined(separator: ",") + "}").utf8)
    }

    @Test func oauthClientNeverTrapsOnHostileAnswers() async {
        let seed = SeededRandom.seed(default: 0x5EED_0003)
        print("HostileAnswerFuzzTests.oauthClientNeverTrapsOnHostileAnswers seed \(seed)")
        var random = SeededRandom(seed: seed)
        for index in 0..<Self.cases {
            let status = random.chance(0.6) ? 200 : random.pick(Self.statuses)
            let answer = KlaviyoHTTPResponse(
                status: status, headers: [("Content-Type", "application/json")], body: Self.tokenBody(&random))
            let label =
                "seed \(seed) case \(index) status \(status) body \(String(decoding: answer.body, as: UTF8.self))"
            let client = Self.oauthClient(RecordingTransport { _ in answer })
            do throws(KlaviyoOAuthError) {
                switch index % 3 {
                case 0:
                    let tokens = try await client.refresh(refreshToken: "rt_fuzz_secret")
                    #expect((200..<300).contains(status), "\(label): a non-2xx answer produced tokens")
                    #expect(
                        tokens.expiresIn >= Clamp.minTokenLifetimeSeconds
                            && tokens.expiresIn <= Clamp.maxTokenLifetimeSeconds, "\(label)")
                    #expect(!tokens.accessToken.isEmpty, "\(label)")
                case 1:
                    let tokens = try await client.exchangeCode(
                        "code", codeVerifier: "verifier", redirectURI: "https://x/cb")
                    #expect(
                        tokens.expiresIn >= Clamp.minTokenLifetimeSeconds
                            && tokens.expiresIn <= Clamp.maxTokenLifetimeSeconds, "\(label)")
                default:
                    try await client.revoke(refreshToken: "rt_fuzz_secret")
                    #expect((200..<300).contains(status), "\(label): a non-2xx revoke succeeded")
                }
            } catch {
                #expect(!error.description.contains("cs_fuzz_secret") && !error.description.contains("rt_fuzz_secret"))
                if !(200..<300).contains(status) { #expect(error.status == status, "\(label)") }
                _ = error.isRetriable
            }
        }
    }

    /// Regression: `expires_in: 1e20` went through `Int64(Double)`, which traps; `expires_in: 0` stored a token
    /// that was never fresh, so every command of the account refreshed it (one token call each).
    static let expiresInCases: [(String, Int64)] = [
        ("1e20", 365 * 86_400), ("-5", 3600), ("\"abc\"", 3600), ("9223372036854775807", 365 * 86_400),
        ("{\"nested\":{\"deeper\":[1e308]}}", 3600), ("3599.9", 3599), ("\"7200\"", 7200), ("-1e308", 3600),
        ("\"1e20\"", 3600), ("0", 60), ("59", 60), ("0.5", 60), ("\"0\"", 60), ("null", 3600),
    ]

    @Test(arguments: expiresInCases)
    func absurdExpiresInIsClamped(expiresIn: String, seconds: Int64) async throws {
        let body = #"{"access_token":"at","token_type":"Bearer","expires_in":"# + expiresIn + "}"
        let client = Self.oauthClient(RecordingTransport { _ in RecordingTransport.json(200, body) })
        let tokens = try await client.refresh(refreshToken: "rt")
        #expect(tokens.expiresIn == seconds)
        #expect(tokens.description.contains("expires_in: \(seconds)"))
    }

    @Test func tokenResponsesCannotCarryAbsurdLifetimes() {
        var tokens = KlaviyoTokenResponse(
            accessToken: "a", tokenType: "Bearer", expiresIn: .max, refreshToken: nil, scope: nil)
        #expect(tokens.expiresIn == Clamp.maxTokenLifetimeSeconds)
        tokens.expiresIn = .min
        #expect(tokens.expiresIn == Clamp.defaultTokenLifetimeSeconds)
        tokens.expiresIn = 0
        #expect(tokens.expiresIn == Clamp.minTokenLifetimeSeconds)
    }
}
