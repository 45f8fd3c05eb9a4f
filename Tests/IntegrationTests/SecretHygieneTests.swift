import Foundation
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Testing

/// API keys never appear in logs, results, dead letters or Redis in plaintext.
@Suite("Secret hygiene", .timeLimit(.minutes(3)))
struct SecretHygieneTests {
    /// The text of a reply: bulk strings as UTF-8, arrays (hash fields and values, list items) joined.
    static func text(_ value: RedisValue) -> String {
        if case .array(let items) = value { return items.map(text).joined(separator: "\n") }
        return value.string ?? ""
    }

    @Test func apiKeysStayEncryptedAndOutOfEveryOutput() async throws {
        try await withRelayStack { stack in
            let (account, key) = try await stack.connectAccount()
            // An OAuth connection too: its access and refresh tokens must never be stored in plaintext either.
            let oauth = try await stack.connectOAuth(try await stack.createOAuthApp())
            let tokens = [oauth.accessToken, oauth.refreshToken].compactMap { $0 }
            #expect(tokens.count == 2)
            // A second account whose stored key Klaviyo does not know: its command fails with a 401.
            let revokedAccount = "acct-revoked-\(UUID().uuidString.prefix(6).lowercased())"
            let revokedKey =
                "pk_revoked\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
            try await CredentialStore(redis: stack.redis, keys: stack.keys).saveAPIKey(
                accountID: revokedAccount, apiKey: revokedKey, klaviyoAccountID: "X", klaviyoAccountName: nil)
            let ok = stack.id("s-ok")
            let refused = stack.id("s-401")
            let consumer = try stack.startConsumer()
            try await stack.waitForConsumers(1)
            try await stack.publish(
                commandBody(
                    id: ok, type: "profile.upsert", accountID: account, payload: ["profile": ["email": "s@example.com"]]
                ),
                routingKey: "profile.upsert", messageID: ok)
            try await stack.publish(
                commandBody(
                    id: refused, type: "profile.upsert", accountID: revokedAccount,
                    payload: ["profile": ["email": "r@example.com"]]),
                routingKey: "profile.upsert", messageID: refused)
            try await stack.waitForCollected(2)
            let letter = try #require(stack.deadLetters.first)
            #expect(letter.properties.headers[DeadLetter.Header.errorCode]?.stringValue == "reauth_required")
            let record = try await CredentialStore(redis: stack.redis, keys: stack.keys).load(accountID: revokedAccount)
            #expect(record?.state == .reauthRequired)

            try await eventually("the consumer to log the finished command", timeout: .seconds(10)) {
                consumer.log.contains("command succeeded") && consumer.log.contains(ok)
            }
            var outputs = stack.deliveries.map { String(decoding: $0.body, as: UTF8.self) + "\($0.properties.headers)" }
            outputs.append(consumer.log)
            for keyText in [key, revokedKey] {
                for output in outputs { #expect(!output.contains(keyText)) }
            }
            // Every relay key in Redis, whatever its type, must be free of the plaintext keys (pipelined: the
            // shared Redis holds every test's keys).
            let allKeys = try await stack.redis.scan(match: "kr:*")
            var scanned = 0
            for start in stride(from: 0, to: allKeys.count, by: 500) {
                let chunk = Array(allKeys[start..<min(start + 500, allKeys.count)])
                let types = try await stack.redis.pipeline(chunk.map { ["TYPE", $0] })
                let reads: [[String]] = zip(chunk, types).map { redisKey, type in
                    switch (try? type.get())?.string {
                    case "hash": return ["HGETALL", redisKey]
                    case "list": return ["LRANGE", redisKey, "0", "-1"]
                    default: return ["GET", redisKey]
                    }
                }
                for (redisKey, value) in zip(chunk, try await stack.redis.pipeline(reads)) {
                    let dump = (try? value.get()).map(Self.text) ?? ""
                    scanned += 1
                    for keyText in [key, revokedKey] + tokens {
                        #expect(!dump.contains(keyText), "\(redisKey) holds a key or token in plaintext")
                    }
                }
            }
            #expect(scanned >= 2, "the scan saw the connections")
            let stored = try await stack.redis.hashGetAll(RedisKeys.connection(account))
            #expect(stored["api_key"]?.hasPrefix("dev:") == true, "stored as kid:ciphertext")
        }
    }
}
