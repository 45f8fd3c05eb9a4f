/// Where a command goes in a Redis Cluster: the keys it names (by the command's key positions), nowhere in
/// particular, or every primary in turn (`SCAN`).
enum RedisCommandRouting {
    /// No key: any primary answers (`PING`, `SCRIPT LOAD`, `EVALSHA` with no keys...).
    case anyNode
    /// `SCAN`: walks every primary, one after the other, behind one cursor.
    case scan
    /// The node serving this slot (all the command's keys hash to it).
    case slot(Int)
    /// The command cannot run on a cluster as given: refused before being sent.
    case refused(RedisError)

    /// The routing of one command (arguments as sent, the first being the command's name).
    static func of(_ command: [[UInt8]]) -> RedisCommandRouting {
        guard let first = command.first else { return .anyNode }
        let name = String(decoding: first, as: UTF8.self).uppercased()
        let keys: ArraySlice<[UInt8]>
        switch name {
        case "SCAN":
            return .scan
        case "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SELECT", "SWAPDB", "MOVE":
            return .refused(
                RedisError(
                    code: .unsupportedCommand, message: "\(name) is not supported by the Redis Cluster client",
                    isRetriable: false))
        case "PING", "ECHO", "SCRIPT", "INFO", "CLUSTER", "DBSIZE", "FLUSHDB", "FLUSHALL", "TIME", "CONFIG",
            "CLIENT", "AUTH", "KEYS", "RANDOMKEY", "COMMAND", "PUBLISH", "WAIT", "LASTSAVE", "SAVE", "BGSAVE",
            "DEBUG", "FUNCTION", "SLOWLOG", "LATENCY", "ROLE", "HELLO", "READONLY", "READWRITE", "ASKING", "QUIT",
            "RESET", "ACL", "LOLWUT", "SHUTDOWN":
            return .anyNode
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            keys = counted(command, at: 2)
        case "DEL", "UNLINK", "EXISTS", "TOUCH", "MGET", "SUNION", "SINTER", "SDIFF", "SUNIONSTORE", "SINTERSTORE",
            "SDIFFSTORE", "PFCOUNT", "PFMERGE":
            keys = command.dropFirst()
        case "RENAME", "RENAMENX", "RPOPLPUSH", "BRPOPLPUSH", "SMOVE", "LMOVE", "BLMOVE", "COPY", "GEOSEARCHSTORE",
            "ZRANGESTORE":
            keys = command.dropFirst().prefix(2)
        case "MSET", "MSETNX":
            keys = ArraySlice(stride(from: 1, to: command.count, by: 2).map { command[$0] })
        case "BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX":
            keys = command.dropFirst().dropLast()
        case "ZUNION", "ZINTER", "ZDIFF", "SINTERCARD", "ZINTERCARD", "LMPOP", "ZMPOP":
            keys = counted(command, at: 1)
        case "BLMPOP", "BZMPOP":
            keys = counted(command, at: 2)
        case "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE":
            keys = command.dropFirst().prefix(1) + counted(command, at: 2)
        case "BITOP":
            keys = command.dropFirst(2)
        case "OBJECT", "MEMORY", "XINFO":
            keys = command.dropFirst(2).prefix(1)
        case "XREAD", "XREADGROUP":
            let streamsWord = Array("STREAMS".utf8)
            guard let streams = command.firstIndex(where: { $0.map(uppercased) == streamsWord }) else {
                return .anyNode
            }
            let rest = command[(streams + 1)...]
            keys = rest.prefix(rest.count / 2)
        default:
            keys = command.dropFirst().prefix(1)
        }
        guard let firstKey = keys.first else { return .anyNode }
        let slot = RedisSlot.of(bytes: firstKey)
        for key in keys.dropFirst() where RedisSlot.of(bytes: key) != slot {
            return .refused(
                RedisError(
                    code: .crossSlot,
                    message: "CROSSSLOT: the keys of \(name) hash to different slots (\(slot) and "
                        + "\(RedisSlot.of(bytes: key))); a cluster needs them in one slot: share a {hash tag}",
                    isRetriable: false))
        }
        return .slot(slot)
    }

    private static func uppercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? byte - 32 : byte
    }

    /// The keys announced by a `numkeys` argument at `index` (`EVALSHA sha numkeys key...`).
    private static func counted(_ command: [[UInt8]], at index: Int) -> ArraySlice<[UInt8]> {
        guard index < command.count, let count = Int(String(decoding: command[index], as: UTF8.self)), count > 0
        else { return [] }
        return command.dropFirst(index + 1).prefix(count)
    }
}
