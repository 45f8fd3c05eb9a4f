import Klaviyo
import Testing

@Suite("Klaviyo OAuth client")
struct KlaviyoOAuthClientTests {
    func client(_ transport: RecordingTransport) -> KlaviyoOAuthClient {
        KlaviyoOAuthClient(
            baseURL: "https://a.klaviyo.com/", clientID: "client_1", clientSecret: "s3cret/+=", transport: transport,
            userAgent: "klaviyo-relay/test")
    }

    static let tokenBody = #"""
        {"access_token":"at_1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt_2","scope":"accounts:read profiles:write"}
        """#

    func header(_ request: KlaviyoHTTPRequest, _ name: String) -> String? {
        request.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    @Test func codeExchangeSendsBasicAuthAndFormBody() async throws {
        let transport = RecordingTransport { _ in RecordingTransport.json(200, Self.tokenBody) }
        let tokens = try await client(transport).exchangeCode(
            "code 1&x", codeVerifier: "dBjftJeZ4CVP-mJ92K9zqF2vXdk2dqEvJcq3SVr3Z0",
            redirectURI: "http://127.0.0.1:8080/oauth/klaviyo/callback")
        #expect(tokens.accessToken == "at_1")
        #expect(tokens.refreshToken == "rt_2")
        #expect(tokens.expiresIn == 3600)
        #expect(tokens.scope == "accounts:read profiles:write")
        let request = try #require(transport.last)
        #expect(request.method == "POST")
        #expect(request.url == "https://a.klaviyo.com/oauth/token")
        // base64("client_1:s3cret/+=")
        #expect(header(request, "Authorization") == "Basic Y2xpZW50XzE6czNjcmV0Lys9")
        #expect(header(request, "Content-Type") == "application/x-www-form-urlencoded")
        #expect(
            String(decoding: try #require(request.body), as: UTF8.self)
                == "grant_type=authorization_code&code=code%201%26x&code_verifier=dBjftJeZ4CVP-mJ92K9zqF2vXdk2dqEvJcq3SVr3Z0"
                + "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2Fklaviyo%2Fcallback")
        #expect(!tokens.description.contains("rt_2") && !tokens.description.contains("at_1"))
    }

    @Test func refreshAndRevokeBodies() async throws {
        let transport = RecordingTransport { request in
            request.url.hasSuffix("/oauth/revoke")
                ? RecordingTransport.json(200, "{}") : RecordingTransport.json(200, Self.tokenBody)
        }
        _ = try await client(transport).refresh(refreshToken: "rt_1")
        var request = try #require(transport.last)
        #expect(request.url == "https://a.klaviyo.com/oauth/token")
        #expect(
            String(decoding: try #require(request.body), as: UTF8.self) == "grant_type=refresh_token&refresh_token=rt_1"
        )
        try await client(transport).revoke(refreshToken: "rt_1")
        request = try #require(transport.last)
        #expect(request.url == "https://a.klaviyo.com/oauth/revoke")
        #expect(header(request, "Authorization")?.hasPrefix("Basic ") == true)
        #expect(
            String(decoding: try #require(request.body), as: UTF8.self) == "token=rt_1&token_type_hint=refresh_token")
    }

    @Test func decodesOAuthErrors() async throws {
        let invalidGrant = RecordingTransport { _ in
            RecordingTransport.json(400, #"{"error":"invalid_grant","error_description":"Refresh token revoked."}"#)
        }
        await #expect {
            _ = try await client(invalidGrant).refresh(refreshToken: "rt_1")
        } throws: { error in
            let error = try #require(error as? KlaviyoOAuthError)
            return error.isInvalidGrant && !error.isRetriable && error.status == 400
                && error.message == "Refresh token revoked."
        }
        let invalidClient = RecordingTransport { _ in RecordingTransport.json(401, #"{"error":"invalid_client"}"#) }
        await #expect {
            _ = try await client(invalidClient).refresh(refreshToken: "rt_1")
        } throws: { error in
            let error = try #require(error as? KlaviyoOAuthError)
            return error.code == "invalid_client" && !error.isInvalidGrant && !error.isRetriable
        }
        let unavailable = RecordingTransport { _ in
            KlaviyoHTTPResponse(
                status: 503, headers: [("Content-Type", "text/html")], body: Array("<h1>busy</h1>".utf8))
        }
        await #expect {
            _ = try await client(unavailable).refresh(refreshToken: "rt_1")
        } throws: { error in
            let error = try #require(error as? KlaviyoOAuthError)
            return error.code == "server_error" && error.isRetriable
        }
        let down = RecordingTransport { _ throws(KlaviyoTransportFailure) in
            throw KlaviyoTransportFailure(
                message: "connection refused", isRetriable: true, requestMayHaveBeenSent: false)
        }
        await #expect {
            _ = try await client(down).refresh(refreshToken: "rt_1")
        } throws: { error in
            (error as? KlaviyoOAuthError)?.code == "transport"
        }
    }

    @Test func authorizeURLCarriesPKCEAndState() {
        let url = KlaviyoOAuthClient.authorizeURL(
            authorizeBase: "https://www.klaviyo.com/oauth/authorize", clientID: "client_1",
            redirectURI: "https://x.example/cb", scope: "accounts:read profiles:write", state: "st_1",
            codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(
            url
                == "https://www.klaviyo.com/oauth/authorize?response_type=code&client_id=client_1"
                + "&redirect_uri=https%3A%2F%2Fx.example%2Fcb&scope=accounts%3Aread%20profiles%3Awrite&state=st_1"
                + "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
    }
}
