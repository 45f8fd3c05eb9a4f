import Testing

@testable import KlaviyoSimCore

@Suite("Units")
struct UnitTests {
    @Test(arguments: [
        ("a@example.com", true), ("first.last+tag@sub.example.co", true), ("no-at.example.com", false),
        ("two@@example.com", false), ("@example.com", false), ("a@b", false), ("a@example.", false),
        ("a@.example.com", false), ("a b@example.com", false), ("a@exa..mple.com", false),
    ])
    func emailValidation(_ email: String, _ valid: Bool) {
        #expect(KlaviyoSimulator.isValidEmail(email) == valid)
    }

    @Test func directProfileDocumentMatchesResource() throws {
        let record = ProfileRecord(
            id: "01ABCDEFGHJKMNPQRSTVWXYZ01", attributes: ["email": "a@example.com", "first_name": "A \"quoted\""],
            location: ["city": "Boston", "latitude": 42.5], properties: ["plan": "pro", "n": 3],
            created: "2025-10-20T12:00:00+00:00", updated: "2025-10-20T12:00:01+00:00")
        let direct = try JSONValue.parse(record.document(base: "http://h"))
        #expect(direct == ["data": record.resource(base: "http://h")])
    }

    @Test func jsonRoundTrip() throws {
        let text = #"{"a":[1,2.5,-3e2,true,false,null,"x\"y\\z\n\u00e9\ud83d\ude00"],"b":{}}"#
        let value = try JSONValue.parse(text)
        #expect(try JSONValue.parse(value.serialized()) == value)
        #expect(value["a"]?.arrayValue?[6] == "x\"y\\z\né😀")
        #expect(throws: JSONParseError.self) { try JSONValue.parse("{\"a\":1,}") }
        #expect(throws: JSONParseError.self) { try JSONValue.parse("[1] x") }
    }

    @Test func routerPrefersLiteralsAndReports405() {
        let router = OperationRouter(operations: KlaviyoOperation.all)
        guard case .operation(let op, let params) = router.match(method: "GET", path: "/api/profiles/ABC/") else {
            Issue.record("no match")
            return
        }
        #expect(op.operationId == "get_profile")
        #expect(params == ["ABC"])
        if case .methodNotAllowed = router.match(method: "PUT", path: "/api/profiles") {
        } else {
            Issue.record("expected 405")
        }
        if case .notFound = router.match(method: "GET", path: "/api/nothing") {} else { Issue.record("expected 404") }
    }
}
