import Klaviyo
import Logging
import Testing

@Suite("Klaviyo client")
struct KlaviyoClientTests {
    func client(_ transport: RecordingTransport, base: String = "https://a.klaviyo.com/") -> KlaviyoClient {
        KlaviyoClient(
            baseURL: base, transport: transport, userAgent: "klaviyo-relay/test", logger: Logger(label: "test"))
    }

    let profileBody = """
        {"data":{"type":"profile","id":"01GDDKASAP8TKDDA2GRZDSVP4H","attributes":{"email":"sarah@example.com"},"links":{"self":"x"}}}
        """

    @Test func sendsRequiredHeadersAndJSONAPIBody() async throws {
        let transport = RecordingTransport { _ in RecordingTransport.json(201, self.profileBody) }
        let (profileID, created) = try await client(transport).upsertProfile(
            attributes: ["email": "sarah@example.com", "first_name": nil], credential: .apiKey("pk_secret123"))
        #expect(profileID == "01GDDKASAP8TKDDA2GRZDSVP4H")
        #expect(created)
        let request = try #require(transport.last)
        #expect(request.method == "POST")
        #expect(request.url == "https://a.klaviyo.com/api/profile-import")
        let headers = Dictionary(
            request.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(headers["revision"] == "2025-10-15")
        #expect(headers["authorization"] == "Klaviyo-API-Key pk_secret123")
        #expect(headers["accept"] == "application/vnd.api+json")
        #expect(headers["content-type"] == "application/vnd.api+json")
        #expect(headers["user-agent"] == "klaviyo-relay/test")
        let body = try JSONValue.parse(try #require(request.body))
        #expect(body["data"]?["type"] == "profile")
        #expect(body["data"]?["attributes"]?["first_name"] == .null, "null must be sent to clear the field")
        #expect(body["data"]?["attributes"]?["email"] == "sarah@example.com")
    }

    @Test func bearerTokenAndUpdateReport200AsNotCreated() async throws {
        let transport = RecordingTransport { _ in RecordingTransport.json(200, self.profileBody) }
        let (_, created) = try await client(transport).upsertProfile(
            attributes: ["email": "a@b.co"], credential: .bearer("tok"))
        #expect(!created)
        #expect(transport.last?.headers.first { $0.name == "Authorization" }?.value == "Bearer tok")
    }

    @Test func filterQueryIsEncoded() async throws {
        let transport = RecordingTransport { _ in RecordingTransport.json(200, #"{"data":[],"links":{}}"#) }
        let profiles = try await client(transport).findProfiles(.email("a+b@example.com"), credential: .apiKey("pk_x"))
        #expect(profiles.isEmpty)
        #expect(
            transport.last?.url
                == "https://a.klaviyo.com/api/profiles?filter=equals%28email%2C%22a%2Bb%40example.com%22%29&page%5Bsize%5D=20"
        )
    }

    @Test func decodesJSONAPIErrorsWithPointer() async throws {
        let transport = RecordingTransport { _ in
            RecordingTransport.json(
                400,
                #"{"errors":[{"id":"e1","status":400,"code":"invalid","title":"Invalid input.","detail":"Invalid email.","source":{"pointer":"/data/attributes/email"},"meta":{}}]}"#
            )
        }
        await #expect {
            _ = try await client(transport).upsertProfile(attributes: ["email": "x@y.co"], credential: .apiKey("pk_x"))
        } throws: { error in
            guard let error = error as? KlaviyoError else { return false }
            return error.code == .rejected && error.status == 400 && error.retryDecision == .permanent
                && error.apiErrors.first?.sourcePointer == "/data/attributes/email"
                && error.description.contains("Invalid email.")
        }
    }

    @Test func throttledCarriesRetryAfter() async throws {
        let transport = RecordingTransport { _ in
            RecordingTransport.json(
                429,
                #"{"errors":[{"id":"t","status":429,"code":"throttled","title":"Request was throttled.","detail":"Expected available in 7 seconds."}]}"#,
                headers: [("Retry-After", "7")])
        }
        do {
            _ = try await client(transport).getAccount(credential: .apiKey("pk_x"))
            Issue.record("expected a throttled error")
        } catch {
            #expect(error.code == .throttled)
            #expect(error.retryDecision == .retryAfter(.seconds(7)))
        }
    }

    @Test func htmlErrorBodyIsDescribedNotDumped() async throws {
        let html =
            "<html><head><title>403 Forbidden</title></head><body><h1>Attention Required! | Cloudflare</h1></body></html>"
        let transport = RecordingTransport { _ in
            KlaviyoHTTPResponse(
                status: 403, headers: [("Content-Type", "text/html"), ("cf-mitigated", "challenge")],
                body: Array(html.utf8))
        }
        do {
            _ = try await client(transport).getAccount(credential: .apiKey("pk_x"))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .forbidden)
            #expect(error.apiErrors.isEmpty)
            #expect(error.message.contains("Cloudflare challenge"))
            #expect(error.message.contains("Attention Required"))
            #expect(!error.message.contains("<h1>"))
        }
    }

    @Test func duplicateProfileIDIsDecoded() throws {
        let response = RecordingTransport.json(
            409,
            #"{"errors":[{"id":"d","status":409,"code":"duplicate_profile","title":"Conflict.","detail":"A profile already exists with one of these identifiers.","meta":{"duplicate_profile_id":"01HEXISTING"}}]}"#
        )
        #expect(throws: KlaviyoError.self) {
            try KlaviyoClient.interpret(response, operationID: "create_profile", usedOAuth: false)
        }
        do {
            _ = try KlaviyoClient.interpret(response, operationID: "create_profile", usedOAuth: false)
        } catch {
            #expect(error.code == .conflict)
            #expect(error.apiErrors.first?.duplicateProfileID == "01HEXISTING")
        }
    }

    @Test func retryClassificationFollowsFacts() {
        func decision(_ status: Int, oauth: Bool = false) -> KlaviyoRetryDecision {
            let response = KlaviyoHTTPResponse(status: status, headers: [], body: [])
            do {
                _ = try KlaviyoClient.interpret(response, operationID: "op", usedOAuth: oauth)
                return .permanent
            } catch {
                return error.retryDecision
            }
        }
        #expect(decision(503) == .backoff)
        #expect(decision(504) == .backoffIfIdempotent)  // a gateway timeout: the request may have been applied
        #expect(decision(524) == .backoffIfIdempotent)
        #expect(decision(500) == .backoffIfIdempotent)
        #expect(decision(502) == .backoffIfIdempotent)
        #expect(decision(401) == .permanent)
        #expect(decision(401, oauth: true) == .refreshCredential)
        #expect(decision(403) == .permanent)
        #expect(decision(404) == .permanent)
        #expect(decision(429) == .retryAfter(.seconds(1)))
    }

    @Test func transportFailuresKeepWhetherTheRequestMayHaveBeenSent() async {
        let refused = RecordingTransport { _ throws(KlaviyoTransportFailure) in
            throw KlaviyoTransportFailure(
                message: "connection refused", isRetriable: true, requestMayHaveBeenSent: false)
        }
        do {
            _ = try await client(refused).getAccount(credential: .apiKey("pk_x"))
        } catch {
            #expect(error.code == .transport)
            #expect(error.retryDecision == .backoff)
        }
        let timedOut = RecordingTransport { _ throws(KlaviyoTransportFailure) in
            throw KlaviyoTransportFailure(
                message: "timeout", isRetriable: true, requestMayHaveBeenSent: true, isTimeout: true)
        }
        do {
            _ = try await client(timedOut).getAccount(credential: .apiKey("pk_x"))
        } catch {
            #expect(error.retryDecision == .backoffIfIdempotent)
        }
    }

    @Test func refusesOversizeBodiesBeforeSending() async {
        let transport = RecordingTransport { _ in RecordingTransport.json(200, "{}") }
        let huge = String(repeating: "x", count: KlaviyoAPI.maxPayloadBytes)
        do {
            _ = try await client(transport).upsertProfile(
                attributes: ["email": "a@b.co", "title": .string(huge)], credential: .apiKey("pk_x"))
            Issue.record("expected invalidRequest")
        } catch {
            #expect(error.code == .invalidRequest)
            #expect(transport.requests.withLock { $0.isEmpty })
        }
    }

    @Test func credentialDescriptionIsRedacted() {
        #expect(!"\(KlaviyoCredential.apiKey("pk_verysecret"))".contains("verysecret"))
        #expect(!"\(KlaviyoCredential.bearer("tok_verysecret"))".contains("verysecret"))
    }
}
