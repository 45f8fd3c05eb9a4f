public import AMQP
public import HTTPClient
public import Redis

/// The transport configurations every executable builds from the same `RELAY_*` settings (`klaviyo-relay`'s
/// subcommands and `klaviyo-relay-bench`), in one place.
extension RelayConfiguration {
    /// The broker connection: `RELAY_AMQP_URL` (with `RELAY_AMQP_TLS_CA_FILE` for `amqps://`), named
    /// `connectionName` in the broker's connection list.
    public func amqpConfiguration(connectionName: String) throws(RelayError) -> AMQPConfiguration {
        var amqp: AMQPConfiguration
        do {
            amqp = try AMQPConfiguration(url: amqpURL)
        } catch {
            throw RelayError(code: .invalidConfiguration, message: "RELAY_AMQP_URL: \(error)", underlying: error)
        }
        amqp.tlsCACertificatePath = amqpTLSCAFile
        amqp.connectionName = connectionName
        return amqp
    }

    /// Redis: `RELAY_REDIS_URL` (`redis://…` for one server, `redis-cluster://host:port,host:port,…` for a Redis
    /// Cluster's seed nodes) with `RELAY_REDIS_POOL_SIZE` connections (per node on a cluster).
    public func redisConfiguration() throws(RelayError) -> RedisConfiguration {
        var redis: RedisConfiguration
        do {
            redis = try RedisConfiguration(url: redisURL)
        } catch {
            throw RelayError(code: .invalidConfiguration, message: "RELAY_REDIS_URL: \(error)", underlying: error)
        }
        redis.poolSize = redisPoolSize
        return redis
    }

    /// HTTP calls (to Klaviyo, or klaviyo-sim's admin API): `RELAY_HTTP_CONNECT_TIMEOUT`, `RELAY_HTTP_TIMEOUT`.
    public func httpConfiguration(userAgent: String) -> HTTPClientConfiguration {
        var http = HTTPClientConfiguration()
        http.connectTimeout = httpConnectTimeout
        http.requestTimeout = httpTimeout
        http.userAgent = userAgent
        return http
    }
}
