/// One benchmark scenario: what runs (the relay, or the broker-only echo), the sim latency and the load.
struct BenchScenario: Sendable {
    enum Kind: Sendable { case brokerBaseline, relay }
    var name: String
    var kind: Kind
    var latencyMS: Int
    var concurrency: Int
    /// Commands per second to publish at; nil publishes as fast as confirms allow (saturation).
    var rate: Int? = nil
    /// Whether the consumers run the shared rate limiter (`RELAY_RATE_LIMIT=spec`); off otherwise, since the
    /// bench's klaviyo-sim has no limits either.
    var rateLimit = false
}
