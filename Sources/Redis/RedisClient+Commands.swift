extension RedisClient {
    /// `GET key`: the value as UTF-8, or `nil` when the key does not exist.
    public func get(_ key: String) async throws -> String? {
        let reply = try await send(["GET", key])
        if reply.isNull { return nil }
        guard let value = reply.string else { throw RedisError.unexpectedReply(reply, expected: "a string") }
        return value
    }

    /// `SET key value [PX ms] [NX]`.
    ///
    /// - Parameters:
    ///   - expiry: time to live (millisecond precision, at least 1 ms); `nil` for none.
    ///   - onlyIfAbsent: adds `NX`.
    /// - Returns: `false` when `NX` prevented the write, `true` otherwise.
    @discardableResult
    public func set(
        _ key: String, _ value: String, expiry: Duration? = nil, onlyIfAbsent: Bool = false
    )
        async throws -> Bool
    {
        var command = ["SET", key, value]
        if let expiry { command += ["PX", String(Self.milliseconds(expiry))] }
        if onlyIfAbsent { command.append("NX") }
        return try await !send(command).isNull
    }

    /// `DEL keys…`: the number of keys removed. No round trip for an empty list.
    ///
    /// In cluster mode the keys are grouped by hash slot, one `DEL` per slot (sent as one pipeline).
    @discardableResult
    public func delete(_ keys: [String]) async throws -> Int {
        if keys.isEmpty { return 0 }
        guard configuration.isCluster else { return try await Int(integer(["DEL"] + keys)) }
        var bySlot: [Int: [String]] = [:]
        for key in keys { bySlot[RedisSlot.of(key), default: []].append(key) }
        var removed = 0
        for reply in try await pipeline(bySlot.values.map { ["DEL"] + $0 }) {
            let value = try reply.get()
            guard case .integer(let count) = value else {
                throw RedisError.unexpectedReply(value, expected: "an integer")
            }
            removed += Int(count)
        }
        return removed
    }

    /// `EXISTS key`.
    public func exists(_ key: String) async throws -> Bool {
        try await integer(["EXISTS", key]) > 0
    }

    /// `PEXPIRE key ms`: `false` when the key does not exist.
    @discardableResult
    public func expire(_ key: String, after: Duration) async throws -> Bool {
        try await integer(["PEXPIRE", key, String(Self.milliseconds(after))]) == 1
    }

    /// `HGETALL key`: an empty dictionary when the key does not exist.
    public func hashGetAll(_ key: String) async throws -> [String: String] {
        let reply = try await send(["HGETALL", key])
        guard let elements = reply.array, elements.count % 2 == 0 else {
            throw RedisError.unexpectedReply(reply, expected: "an array of field/value pairs")
        }
        var result: [String: String] = [:]
        result.reserveCapacity(elements.count / 2)
        for index in stride(from: 0, to: elements.count, by: 2) {
            guard let field = elements[index].string, let value = elements[index + 1].string else {
                throw RedisError.unexpectedReply(reply, expected: "string fields and values")
            }
            result[field] = value
        }
        return result
    }

    /// `HSET key field value…`. No round trip for an empty dictionary.
    public func hashSet(_ key: String, _ fields: [String: String]) async throws {
        if fields.isEmpty { return }
        var command = ["HSET", key]
        for (field, value) in fields { command += [field, value] }
        _ = try await integer(command)
    }

    /// `HGET key field`: `nil` when the key or field does not exist.
    public func hashGet(_ key: String, _ field: String) async throws -> String? {
        let reply = try await send(["HGET", key, field])
        if reply.isNull { return nil }
        guard let value = reply.string else { throw RedisError.unexpectedReply(reply, expected: "a string") }
        return value
    }

    /// `INCRBY key amount`: the new value.
    @discardableResult
    public func increment(_ key: String, by amount: Int64 = 1) async throws -> Int64 {
        try await integer(["INCRBY", key, String(amount)])
    }

    /// All keys matching a glob pattern, by a full `SCAN` cursor loop (keys may repeat if they change meanwhile;
    /// the result is de-duplicated). In cluster mode the loop visits every primary.
    public func scan(match: String, count: Int = 500) async throws -> [String] {
        var cursor = "0"
        var seen = Set<String>()
        var keys: [String] = []
        repeat {
            let reply = try await send(["SCAN", cursor, "MATCH", match, "COUNT", String(count)])
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let batch = parts[1].array
            else { throw RedisError.unexpectedReply(reply, expected: "a SCAN reply") }
            for element in batch {
                if let key = element.string, seen.insert(key).inserted { keys.append(key) }
            }
            cursor = next
        } while cursor != "0"
        return keys
    }

    /// `PING`: throws unless the server answers `PONG`.
    public func ping() async throws {
        let reply = try await send(["PING"])
        guard reply.string == "PONG" else { throw RedisError.unexpectedReply(reply, expected: "PONG") }
    }

    private func integer(_ command: [String]) async throws -> Int64 {
        let reply = try await send(command)
        guard case .integer(let value) = reply else { throw RedisError.unexpectedReply(reply, expected: "an integer") }
        return value
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
