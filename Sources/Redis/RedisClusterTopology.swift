/// A Redis Cluster's slot map: which primary serves each of the 16384 slots, and the replicas known.
struct RedisClusterTopology: Sendable {
    /// The primaries, in the order they first appear in `CLUSTER SLOTS`.
    private(set) var primaries: [RedisEndpoint] = []
    /// The replicas (candidates for reading a new slot map after a failover).
    private(set) var replicas: [RedisEndpoint] = []
    /// Index into ``primaries`` for each slot; -1 for a slot no node serves.
    private var owners = [Int16](repeating: -1, count: RedisSlot.count)

    /// The primary serving `slot`, if any.
    func primary(forSlot slot: Int) -> RedisEndpoint? {
        let owner = owners[slot]
        return owner < 0 ? nil : primaries[Int(owner)]
    }

    /// Number of slots some primary serves (16384 when the whole key space is covered).
    var assignedSlots: Int { owners.count { $0 >= 0 } }

    /// Records a `MOVED` redirection: `slot` is now served by `endpoint`.
    mutating func assign(slot: Int, to endpoint: RedisEndpoint) {
        owners[slot] = Int16(index(of: endpoint))
    }

    /// The primaries with the lowest slot each serves, sorted by it: the order in which `SCAN` visits them.
    var scanOrder: [(firstSlot: Int, primary: RedisEndpoint)] {
        var first = [Int](repeating: Int.max, count: primaries.count)
        for slot in owners.indices where owners[slot] >= 0 {
            let owner = Int(owners[slot])
            if first[owner] == Int.max { first[owner] = slot }
        }
        return zip(first, primaries).filter { $0.0 != Int.max }.map { (firstSlot: $0.0, primary: $0.1) }
            .sorted { $0.firstSlot < $1.firstSlot }
    }

    private mutating func index(of endpoint: RedisEndpoint) -> Int {
        if let index = primaries.firstIndex(of: endpoint) { return index }
        primaries.append(endpoint)
        replicas.removeAll { $0 == endpoint }
        return primaries.count - 1
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], [replica host, port, id, ...]...]...]`.
    /// An empty host means the node that answered (`queried`); a range whose primary has an unknown endpoint
    /// (`?`) is left unassigned.
    init(clusterSlots reply: RedisValue, queried: RedisEndpoint) throws(RedisError) {
        guard let ranges = reply.array else {
            throw RedisError.unexpectedReply(reply, expected: "a CLUSTER SLOTS array")
        }
        func endpoint(_ value: RedisValue) -> RedisEndpoint? {
            guard let fields = value.array, fields.count >= 2, let host = fields[0].string, let port = fields[1].int,
                (1...65535).contains(port), host != "?"
            else { return nil }
            return RedisEndpoint(host: host.isEmpty ? queried.host : host, port: Int(port))
        }
        for range in ranges {
            guard let fields = range.array, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                start >= 0, start <= end, end < RedisSlot.count
            else { throw RedisError.unexpectedReply(reply, expected: "CLUSTER SLOTS ranges") }
            guard let primary = endpoint(fields[2]) else { continue }
            let owner = Int16(index(of: primary))
            for slot in Int(start)...Int(end) { owners[slot] = owner }
            for replica in fields.dropFirst(3).compactMap(endpoint)
            where !replicas.contains(replica) && !primaries.contains(replica) {
                replicas.append(replica)
            }
        }
    }
}
