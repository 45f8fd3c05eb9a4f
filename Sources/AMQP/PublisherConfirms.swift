/// Publisher confirms on one confirm-mode channel: delivery tags, the publishes awaiting `basic.ack`/`basic.nack`
/// (also with `multiple`), `basic.return` matching, and failing everything when the channel or connection goes.
///
/// A plain value: no C, no locks, no continuations of its own. `Waiter` is whatever the owner resumes with a
/// ``Resolution`` (a continuation in ``ConnectionWorker``, anything in tests).
struct PublisherConfirms<Waiter> {
    /// What identifies a mandatory publish when the broker hands it back with `basic.return`.
    struct ReturnKey {
        var routingKey: String
        var body: [UInt8]
    }

    /// A publish settled by the broker (or failed locally), with the outcome to hand to its waiter.
    struct Resolution {
        let waiter: Waiter
        let result: Result<Void, AMQPError>
    }

    private struct Outstanding {
        let waiter: Waiter
        let exchange: String
        /// Kept only for mandatory messages, to match a `basic.return` to its publish.
        let returnKey: ReturnKey?
        var returned: AMQPError?
    }

    /// The delivery tag the broker assigns to the next publish on this channel.
    private(set) var nextDeliveryTag: UInt64 = 1
    /// No publish below this tag is outstanding (lets `multiple` acks skip the settled range).
    private var oldestOutstanding: UInt64 = 1
    private var outstanding: [UInt64: Outstanding] = [:]

    /// Whether no publish awaits a confirm.
    var isEmpty: Bool { outstanding.isEmpty }

    /// How many publishes await a confirm.
    var count: Int { outstanding.count }

    /// After `confirm.select` on a fresh channel the broker numbers publishes from 1 again.
    mutating func restartNumbering() {
        nextDeliveryTag = 1
        oldestOutstanding = 1
    }

    /// Records a publish about to be sent; returns the delivery tag the broker will confirm it with.
    @discardableResult
    mutating func register(_ waiter: Waiter, exchange: String, returnKey: ReturnKey?) -> UInt64 {
        let tag = nextDeliveryTag
        nextDeliveryTag += 1
        outstanding[tag] = Outstanding(waiter: waiter, exchange: exchange, returnKey: returnKey)
        return tag
    }

    /// Handles `basic.return`: marks the oldest outstanding mandatory publish with the same exchange, routing key
    /// and body as returned, so its confirm fails with ``AMQPError/Code/unroutable``. Returns `false` if none matches.
    mutating func markReturned(
        exchange: String, routingKey: String, body: [UInt8], replyCode: UInt16, replyText: String
    ) -> Bool {
        let match = outstanding.filter { _, publish in
            publish.returned == nil && publish.exchange == exchange && publish.returnKey?.routingKey == routingKey
                && publish.returnKey?.body == body
        }.keys.min()
        guard let match else { return false }
        outstanding[match]?.returned = AMQPError(
            code: .unroutable,
            message: "message to exchange '\(exchange)' with routing key '\(routingKey)' was returned: \(replyText)",
            replyCode: Int(replyCode), isRetriable: false)
        return true
    }

    /// Handles `basic.ack` / `basic.nack` for `tag` (and every earlier tag when `multiple`); returns the settled
    /// publishes in tag order. Unknown or already settled tags are ignored.
    mutating func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool) -> [Resolution] {
        var settled: [Outstanding] = []
        if multiple {
            if oldestOutstanding <= tag {
                for candidate in oldestOutstanding...tag {
                    if let publish = outstanding.removeValue(forKey: candidate) { settled.append(publish) }
                }
            }
            oldestOutstanding = max(oldestOutstanding, tag + 1)
        } else if let publish = outstanding.removeValue(forKey: tag) {
            settled.append(publish)
        }
        while oldestOutstanding < nextDeliveryTag && outstanding[oldestOutstanding] == nil { oldestOutstanding += 1 }
        return settled.map { publish in
            if nacked {
                return Resolution(
                    waiter: publish.waiter,
                    result: .failure(
                        AMQPError(code: .publishNacked, message: "the broker nacked the message", isRetriable: true)))
            }
            if let returned = publish.returned {
                return Resolution(waiter: publish.waiter, result: .failure(returned))
            }
            return Resolution(waiter: publish.waiter, result: .success(()))
        }
    }

    /// Fails every outstanding publish (the channel or the connection is gone), in tag order; `makeError` gets each
    /// publish's exchange.
    mutating func failAll(_ makeError: (_ exchange: String) -> AMQPError) -> [Resolution] {
        let failed = outstanding.sorted { $0.key < $1.key }
        outstanding = [:]
        oldestOutstanding = nextDeliveryTag
        return failed.map { _, publish in
            Resolution(waiter: publish.waiter, result: .failure(makeError(publish.exchange)))
        }
    }
}
