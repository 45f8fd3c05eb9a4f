/// Which queues a command's AMQP `reply_to` may name (`RELAY_REPLY_TO_PATTERN`).
///
/// A result is published to `reply_to` through the default exchange, so without a policy a publisher could make
/// the relay write into any queue of the vhost: the work queues, `klaviyo.dead`, another service's queue. The
/// policy is a comma-separated list of patterns where `*` matches any run of characters; the default admits
/// RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`, which the broker rewrites to
/// `amq.rabbitmq.reply-to.<opaque>` on delivery) and queues named `reply.*`. A command whose `reply_to` matches
/// no pattern is dead-lettered `reply_to_not_allowed` before anything is sent to Klaviyo.
public struct ReplyToPolicy: Sendable, Hashable, CustomStringConvertible {
    /// The patterns, as configured.
    public let patterns: [String]

    /// The default: direct reply-to and `reply.*`.
    public static let `default` = ReplyToPolicy(validated: [
        "amq.rabbitmq.reply-to", "amq.rabbitmq.reply-to.*", "reply.*",
    ])

    init(validated patterns: [String]) { self.patterns = patterns }

    /// Parses `RELAY_REPLY_TO_PATTERN` (comma-separated; spaces around entries ignored).
    public init(specification: String) throws(RelayError) {
        let entries = specification.split(separator: ",").map { $0.trimmingCharacters(in: " \t") }.filter {
            !$0.isEmpty
        }
        guard !entries.isEmpty else { throw RelayError(code: .invalidReplyToPattern, message: "no pattern given") }
        for entry in entries where entry.utf8.count > 255 {
            throw RelayError(
                code: .invalidReplyToPattern,
                message: "pattern \(entry.prefix(40))… is longer than a queue name (255 bytes)")
        }
        for entry in entries where entry == "*" {
            throw RelayError(
                code: .invalidReplyToPattern, message: "a bare * would admit every queue, including the work queues")
        }
        patterns = entries
    }

    /// Whether `queue` may receive results.
    public func allows(_ queue: String) -> Bool {
        guard !queue.isEmpty, queue.utf8.count <= 255 else { return false }
        return patterns.contains { Self.matches(Array($0.utf8), Array(queue.utf8)) }
    }

    /// Glob match where `*` is any run of bytes (iterative, linear backtracking: no exponential blow-up).
    static func matches(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var (p, t) = (0, 0)
        var star: Int?
        var resume = 0
        let asterisk = UInt8(ascii: "*")
        while t < text.count {
            if p < pattern.count, pattern[p] == asterisk {
                star = p
                resume = t
                p += 1
            } else if p < pattern.count, pattern[p] == text[t] {
                p += 1
                t += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == asterisk { p += 1 }
        return p == pattern.count
    }

    /// The patterns, comma-separated.
    public var description: String { patterns.joined(separator: ",") }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var view = self
        while let first = view.first, set.contains(first) { view = view.dropFirst() }
        while let last = view.last, set.contains(last) { view = view.dropLast() }
        return String(view)
    }
}
