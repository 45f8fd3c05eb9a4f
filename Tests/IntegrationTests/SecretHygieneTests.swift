import Foundation
import Klaviyo
import Relay
import Testing

/// API keys never appear in logs, results, dead letters or Redis in plaintext.
@Suite("Secret hygiene", .timeLimit(.minutes(3)))
struct SecretHygieneTests {
    @Test func apiKeysStayEncryptedAndOutOfEveryOutput() async throws {
        try await withRelayStack { stack in
            let (account, key) = try await stack.connectAccount()
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
            for redisKey in try await stack.redis.scan(match: "kr:{\(account)}:*")
                + (try await stack.redis.scan(match: "kr:idem:\(stack.prefix)-*"))
            {
                let type = try await stack.redis.send(["TYPE", redisKey]).string
                let dump =
                    type == "hash"
                    ? "\(try await stack.redis.hashGetAll(redisKey))" : (try await stack.redis.get(redisKey) ?? "")
                #expect(!dump.contains(key), "\(redisKey) holds the key in plaintext")
            }
            let stored = try await stack.redis.hashGetAll(RedisKeys.connection(account))
            #expect(stored["api_key"]?.hasPrefix("dev:") == true, "stored as kid:ciphertext")
        }
    }
}
