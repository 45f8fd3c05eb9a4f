import Relay
import Testing

@Suite("Configuration")
struct RelayConfigurationTests {
    @Test func defaultsMatchTheContract() throws {
        let configuration = try RelayConfiguration(environment: [:], development: true)
        #expect(configuration.amqpURL == "amqp://guest:guest@127.0.0.1:5672/%2f")
        #expect(configuration.redisURL == "redis://127.0.0.1:6379/0")
        #expect(configuration.klaviyoBaseURL == "https://a.klaviyo.com")
        #expect(configuration.queuePrefix == "klaviyo")
        #expect(configuration.httpPort == 8080)
        #expect(configuration.crashPoint == nil)
    }

    /// A coalescing lock that can expire while its submit still waits for Klaviyo is named at startup; the defaults
    /// (60 s lock, 30 s HTTP timeout) and coalescing off raise nothing.
    @Test func aCoalescingLockShorterThanAnHTTPCallIsACaution() throws {
        #expect(try RelayConfiguration(environment: [:], development: true).cautions.isEmpty)
        let short = try RelayConfiguration(
            environment: ["RELAY_COALESCE_LOCK_TTL": "20s", "RELAY_HTTP_TIMEOUT": "30s"], development: true)
        #expect(short.cautions.count == 1)
        #expect(short.cautions.first?.hasPrefix("RELAY_COALESCE_LOCK_TTL (20s) is not longer than") == true)
        let longer = try RelayConfiguration(
            environment: ["RELAY_COALESCE_LOCK_TTL": "20s", "RELAY_HTTP_TIMEOUT": "15s"], development: true)
        #expect(longer.cautions.isEmpty)
        let off = try RelayConfiguration(
            environment: ["RELAY_COALESCE": "off", "RELAY_COALESCE_LOCK_TTL": "2s"], development: true)
        #expect(off.cautions.isEmpty)
    }

    /// An inline wait shorter than the shortest retry tier plus the return margin leaves a band of waits that
    /// can only be parked in a tier bringing the command back too close to (or after) its slot: named at startup.
    /// Rate limiting off raises nothing, whatever the wait.
    @Test func anInlineWaitTooShortToParkWithAMarginIsACaution() throws {
        let short = try RelayConfiguration(environment: ["RELAY_RATE_LIMIT_MAX_WAIT": "1s"], development: true)
        #expect(short.cautions.count == 1)
        #expect(short.cautions.first?.hasPrefix("RELAY_RATE_LIMIT_MAX_WAIT (1000ms) is below 1500ms") == true)
        let enough = try RelayConfiguration(environment: ["RELAY_RATE_LIMIT_MAX_WAIT": "1500ms"], development: true)
        #expect(enough.cautions.isEmpty)
        let off = try RelayConfiguration(
            environment: ["RELAY_RATE_LIMIT": "off", "RELAY_RATE_LIMIT_MAX_WAIT": "0"], development: true)
        #expect(off.cautions.isEmpty)
    }

    @Test func encryptionKeyIsRequiredOutsideDevelopment() {
        let refused = #expect(throws: RelayError.self) {
            try RelayConfiguration(environment: [:], development: false)
        }
        #expect(refused?.code == .invalidConfiguration)
    }

    @Test func readsAndValidatesVariables() throws {
        let configuration = try RelayConfiguration(
            environment: [
                "RELAY_CONCURRENCY": "64", "RELAY_SHUTDOWN_TIMEOUT": "1500ms", "RELAY_QUEUE_PREFIX": "staging",
                "RELAY_RETURN_TO_ALLOWLIST": "https://app.heropixel.dev/, https://admin.heropixel.dev/",
                "RELAY_ENCRYPTION_KEY": EncryptionKeyRing.generateSpecification(keyID: "k9"),
            ], development: false)
        #expect(configuration.concurrency == 64)
        #expect(configuration.shutdownTimeout == .milliseconds(1500))
        #expect(configuration.queuePrefix == "staging")
        #expect(configuration.returnToAllowlist == ["https://app.heropixel.dev/", "https://admin.heropixel.dev/"])
        #expect(configuration.encryptionKeys.currentKeyID == "k9")
        let badConcurrency = #expect(throws: RelayError.self) {
            try RelayConfiguration(environment: ["RELAY_CONCURRENCY": "0"], development: true)
        }
        #expect(badConcurrency?.code == .invalidConfiguration)
        let badPrefix = #expect(throws: RelayError.self) {
            try RelayConfiguration(environment: ["RELAY_QUEUE_PREFIX": "a b"], development: true)
        }
        #expect(badPrefix?.code == .invalidConfiguration)
    }

    @Test func tokenSettings() throws {
        let defaults = try RelayConfiguration(environment: [:], development: true)
        #expect(defaults.tokenRefreshMargin == .seconds(300))
        #expect(defaults.tokenLockTTL == .seconds(15))
        #expect(defaults.tokenWaitTimeout == .seconds(20))
        let configuration = try RelayConfiguration(
            environment: [
                "RELAY_TOKEN_REFRESH_MARGIN": "2m", "RELAY_TOKEN_LOCK_TTL": "500ms", "RELAY_TOKEN_WAIT_TIMEOUT": "5s",
            ], development: true)
        #expect(configuration.tokenRefreshMargin == .seconds(120))
        #expect(configuration.tokenLockTTL == .milliseconds(500))
        #expect(configuration.tokenWaitTimeout == .seconds(5))
        let refused = #expect(throws: RelayError.self) {
            try RelayConfiguration(environment: ["RELAY_TOKEN_LOCK_TTL": "10ms"], development: true)
        }
        #expect(refused?.code == .invalidConfiguration)
    }

    @Test func faultInjectionNeedsTheExplicitSwitch() throws {
        let off = try RelayConfiguration(environment: ["RELAY_FAULT_CRASH_AT": "after_klaviyo_call"], development: true)
        #expect(off.crashPoint == nil)
        let on = try RelayConfiguration(
            environment: ["RELAY_ENABLE_FAULT_INJECTION": "1", "RELAY_FAULT_CRASH_AT": "after_result_published"],
            development: true)
        #expect(on.crashPoint?.stage == .afterResultPublished)
    }

    /// Outside `--dev`: RELAY_API_TOKEN and RELAY_LINK_SECRET need 32 bytes (the error names the variable, never
    /// the value), and the Klaviyo URLs must be https://. `--dev` accepts what local runs use.
    @Test func shortSecretsAndPlainHTTPAreRefusedOutsideDevelopment() throws {
        let key = try EncryptionKeyRing.generateSpecification(keyID: "k1")
        let strong = String(repeating: "x", count: 32)
        let accepted = try RelayConfiguration(
            environment: ["RELAY_ENCRYPTION_KEY": key, "RELAY_API_TOKEN": strong, "RELAY_LINK_SECRET": strong],
            development: false)
        #expect(accepted.apiToken == strong && accepted.linkSecret == strong)
        let refusals: [(String, String, String)] = [
            ("RELAY_API_TOKEN", String(repeating: "t", count: 31), "RELAY_API_TOKEN must be at least 32 bytes"),
            ("RELAY_LINK_SECRET", "s3cret-kr-marker", "RELAY_LINK_SECRET must be at least 32 bytes"),
            (
                "RELAY_KLAVIYO_API_BASE_URL", "http://127.0.0.1:8089",
                "RELAY_KLAVIYO_API_BASE_URL must be an https:// URL"
            ),
            (
                "RELAY_KLAVIYO_AUTHORIZE_URL", "http://www.klaviyo.com/oauth/authorize",
                "RELAY_KLAVIYO_AUTHORIZE_URL must be an https:// URL"
            ),
            (
                "RELAY_KLAVIYO_API_BASE_URL", "ftp://a.klaviyo.com",
                "RELAY_KLAVIYO_API_BASE_URL must be an https:// URL"
            ),
        ]
        for (name, value, message) in refusals {
            do {
                _ = try RelayConfiguration(environment: ["RELAY_ENCRYPTION_KEY": key, name: value], development: false)
                Issue.record("\(name)=\(value) was accepted outside --dev")
            } catch {
                #expect(error.description.hasPrefix(message), "\(error.description)")
                #expect(!error.description.contains(value), "the error never shows the value")
            }
            let development = try RelayConfiguration(environment: [name: value], development: true)
            #expect(development.isDevelopment, "--dev accepts \(name)=\(value)")
        }
        #expect(String(repeating: "x", count: 31).utf8.count < RelayConfiguration.minimumSecretBytes)
        let refused = #expect(throws: RelayError.self) {
            try RelayConfiguration(
                environment: ["RELAY_ENCRYPTION_KEY": key, "RELAY_API_TOKEN": String(repeating: "x", count: 31)],
                development: false)
        }
        #expect(refused?.code == .invalidConfiguration)
    }

    @Test func linkMaxTTL() throws {
        #expect(try RelayConfiguration(environment: [:], development: true).linkMaxTTL == .seconds(3600))
        let configured = try RelayConfiguration(environment: ["RELAY_LINK_MAX_TTL": "15m"], development: true)
        #expect(configured.linkMaxTTL == .seconds(900))
        for value in ["0", "8d", "soon"] {
            let refused = #expect(throws: RelayError.self, "RELAY_LINK_MAX_TTL=\(value)") {
                try RelayConfiguration(environment: ["RELAY_LINK_MAX_TTL": value], development: true)
            }
            #expect(refused?.code == .invalidConfiguration)
        }
    }

    @Test func oauthStartLimit() throws {
        let defaults = try RelayConfiguration(environment: [:], development: true).oauthStartLimit
        #expect(defaults == .standard && defaults.maxStarts == 20 && defaults.window == .seconds(600))
        let configured = try RelayConfiguration(environment: ["RELAY_OAUTH_START_LIMIT": "5"], development: true)
        #expect(configured.oauthStartLimit == .init(maxStarts: 5, window: .seconds(600)))
        for value in ["0", "-1", "many", "10001"] {
            let refused = #expect(throws: RelayError.self, "RELAY_OAUTH_START_LIMIT=\(value)") {
                try RelayConfiguration(environment: ["RELAY_OAUTH_START_LIMIT": value], development: true)
            }
            #expect(refused?.code == .invalidConfiguration)
        }
    }

    @Test func descriptionRedactsSecrets() throws {
        let configuration = try RelayConfiguration(
            environment: [
                "RELAY_AMQP_URL": "amqp://relay:s3cret@broker:5672/%2f", "RELAY_API_TOKEN": "tok-s3cret",
                "RELAY_KLAVIYO_CLIENT_SECRET": "cs-s3cret",
            ], development: true)
        #expect(!configuration.description.contains("s3cret"))
        #expect(configuration.description.contains("amqp://relay:***@broker"))
    }
}

@Suite("Rate limit configuration")
struct RateLimitConfigurationTests {
    @Test func defaultsFollowTheSpec() throws {
        let configuration = try RelayConfiguration(environment: [:], development: true)
        #expect(configuration.rateLimitEnabled)
        #expect(configuration.rateLimitShare == 1.0)
        #expect(configuration.rateLimitMaxWait == .milliseconds(1500))
    }

    @Test func readsTheVariables() throws {
        let configuration = try RelayConfiguration(
            environment: [
                "RELAY_RATE_LIMIT": "off", "RELAY_RATE_LIMIT_SHARE": "0.5", "RELAY_RATE_LIMIT_MAX_WAIT": "250ms",
            ],
            development: true)
        #expect(!configuration.rateLimitEnabled)
        #expect(configuration.rateLimitShare == 0.5)
        #expect(configuration.rateLimitMaxWait == .milliseconds(250))
        let spec = try RelayConfiguration(
            environment: ["RELAY_RATE_LIMIT": "spec", "RELAY_RATE_LIMIT_SHARE": "1", "RELAY_RATE_LIMIT_MAX_WAIT": "0"],
            development: true)
        #expect(spec.rateLimitEnabled)
        #expect(spec.rateLimitShare == 1.0)
        #expect(spec.rateLimitMaxWait == .zero)
    }

    @Test(arguments: [
        ("RELAY_RATE_LIMIT", "on", "RELAY_RATE_LIMIT must be spec or off"),
        ("RELAY_RATE_LIMIT_SHARE", "0", "RELAY_RATE_LIMIT_SHARE must be a number in (0, 1]"),
        ("RELAY_RATE_LIMIT_SHARE", "1.5", "RELAY_RATE_LIMIT_SHARE must be a number in (0, 1]"),
        ("RELAY_RATE_LIMIT_SHARE", "-0.2", "RELAY_RATE_LIMIT_SHARE must be a number in (0, 1]"),
        ("RELAY_RATE_LIMIT_SHARE", "half", "RELAY_RATE_LIMIT_SHARE must be a number in (0, 1]"),
        ("RELAY_RATE_LIMIT_SHARE", "nan", "RELAY_RATE_LIMIT_SHARE must be a number in (0, 1]"),
        ("RELAY_RATE_LIMIT_MAX_WAIT", "soon", "RELAY_RATE_LIMIT_MAX_WAIT must be a duration"),
        ("RELAY_RATE_LIMIT_MAX_WAIT", "2m", "RELAY_RATE_LIMIT_MAX_WAIT must be at most 60s"),
    ])
    func rejectsBadValuesWithAClearMessage(name: String, value: String, message: String) {
        do {
            _ = try RelayConfiguration(environment: [name: value], development: true)
            Issue.record("\(name)=\(value) was accepted")
        } catch {
            #expect(error.description.hasPrefix(message), "\(error.description)")
        }
    }
}

@Suite("Transport configurations from the relay's settings")
struct RelayConfigurationClientsTests {
    @Test func amqpRedisAndHTTPComeFromTheRelaySettings() throws {
        let configuration = try RelayConfiguration(
            environment: [
                "RELAY_AMQP_URL": "amqps://u:p@broker.example:5671/vh", "RELAY_REDIS_URL": "redis://cache:6380/2",
                "RELAY_REDIS_POOL_SIZE": "7", "RELAY_HTTP_TIMEOUT": "9s", "RELAY_HTTP_CONNECT_TIMEOUT": "3s",
            ], development: true)
        let amqp = try configuration.amqpConfiguration(connectionName: "test conn")
        #expect(amqp.host == "broker.example" && amqp.port == 5671 && amqp.useTLS && amqp.virtualHost == "vh")
        #expect(amqp.connectionName == "test conn")
        let redis = try configuration.redisConfiguration()
        #expect(redis.poolSize == 7)
        let http = configuration.httpConfiguration(userAgent: "ua/1")
        #expect(http.requestTimeout == .seconds(9) && http.connectTimeout == .seconds(3) && http.userAgent == "ua/1")
    }

    @Test func badURLsNameTheirVariable() throws {
        let configuration = try RelayConfiguration(
            environment: ["RELAY_AMQP_URL": "bogus://x", "RELAY_REDIS_URL": "nope://y"], development: true)
        do {
            _ = try configuration.amqpConfiguration(connectionName: "x")
            Issue.record("a bad AMQP URL was accepted")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.description.hasPrefix("RELAY_AMQP_URL: "))
        }
        do {
            _ = try configuration.redisConfiguration()
            Issue.record("a bad Redis URL was accepted")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.description.hasPrefix("RELAY_REDIS_URL: "))
        }
    }
}
