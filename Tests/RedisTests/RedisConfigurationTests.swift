import Redis
import Testing

@Suite("RedisConfiguration and values")
struct RedisConfigurationTests {
    @Test func parsesURLs() throws {
        let plain = try RedisConfiguration(url: "redis://127.0.0.1")
        #expect(plain.host == "127.0.0.1" && plain.port == 6379 && plain.database == 0)
        #expect(plain.username == nil && plain.password == nil)
        #expect(plain.poolSize == 8 && plain.connectTimeout == .seconds(2) && plain.commandTimeout == .seconds(2))

        let full = try RedisConfiguration(url: "redis://relay:s%40cret:x@cache.internal:6380/3")
        #expect(full.host == "cache.internal" && full.port == 6380 && full.database == 3)
        #expect(full.username == "relay" && full.password == "s@cret:x")

        let passwordOnly = try RedisConfiguration(url: "redis://:hunter2@localhost/")
        #expect(passwordOnly.username == nil && passwordOnly.password == "hunter2" && passwordOnly.database == 0)

        let ipv6 = try RedisConfiguration(url: "redis://[::1]:7000/1")
        #expect(ipv6.host == "::1" && ipv6.port == 7000 && ipv6.database == 1)

        for bad in ["http://x", "rediss://x", "redis://", "redis://host:notaport", "redis://host:70000", "redis://h/x"]
        {
            #expect(throws: RedisError.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
        do {
            _ = try RedisConfiguration(url: "redis://u:topsecret@h:bad")
        } catch {
            #expect(error.code == .invalidURL)
            #expect(!error.description.contains("topsecret"))
        }
    }

    @Test func descriptionRedactsThePassword() throws {
        let configuration = try RedisConfiguration(url: "redis://relay:topsecret@cache:6380/2")
        #expect(!configuration.description.contains("topsecret"))
        #expect(configuration.description.contains("relay:***@cache:6380/2"))
        #expect(!"\(configuration)".contains("topsecret"))
    }

    @Test func scriptSHA1MatchesKnownVectors() {
        #expect(RedisScript("").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(RedisScript("abc").sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(
            RedisScript(String(repeating: "a", count: 1_000)).sha1 == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
    }

    @Test func valueAccessors() {
        #expect(RedisValue.bulkString(Array("42".utf8)).int == 42)
        #expect(RedisValue.simpleString("OK").string == "OK")
        #expect(RedisValue.integer(7).int == 7)
        #expect(RedisValue.integer(7).string == nil)
        #expect(RedisValue.null.isNull)
        #expect(RedisValue.array([.null]).array == [.null])
        #expect(RedisValue.bulkString(Array("x".utf8)).int == nil)
    }
}
