/// Which registered consumers are subscribed on the current incarnation of the consume channel.
///
/// Consumes are sent one at a time: RabbitMQ may drop a consume-ok when a later consume fails, so only serialising
/// tells which consumer a 404 belongs to. The registry of consumers itself (tag → queue, prefetch, stream) lives in
/// ``SharedState``; this value only tracks the channel side. A plain value: the worker sends what it says.
struct ConsumerSubscriptions {
    /// Tags subscribed, in flight or waiting on the consume channel (this channel incarnation).
    private(set) var subscribed: Set<String> = []
    /// The one `basic.consume` awaiting its consume-ok.
    private(set) var inFlight: String?
    /// Registrations accepted but not sent yet, in order.
    private var waiting: [ConsumerRegistration] = []

    /// Whether `tag` is subscribed, in flight or waiting on this channel.
    func isSubscribed(_ tag: String) -> Bool { subscribed.contains(tag) }

    /// The tags waiting for their turn to be sent, in order.
    var waitingTags: [String] { waiting.map(\.tag) }

    /// Queues `registration` for subscribing; returns `false` (and does nothing) if it is already subscribed.
    @discardableResult
    mutating func enqueue(_ registration: ConsumerRegistration) -> Bool {
        guard !subscribed.contains(registration.tag) else { return false }
        subscribed.insert(registration.tag)
        waiting.append(registration)
        return true
    }

    /// After a (re)connect or a reopened consume channel: queues every registered consumer not subscribed yet.
    mutating func resubscribe(_ registrations: some Sequence<ConsumerRegistration>) {
        for registration in registrations { enqueue(registration) }
    }

    /// The registration whose `basic.qos` + `basic.consume` to send now, if no consume awaits its consume-ok;
    /// it counts as in flight from here on.
    mutating func nextToSend() -> ConsumerRegistration? {
        guard inFlight == nil, !waiting.isEmpty else { return nil }
        let registration = waiting.removeFirst()
        inFlight = registration.tag
        return registration
    }

    /// `basic.consume-ok` arrived: the next waiting registration may be sent.
    mutating func consumeOK() {
        inFlight = nil
    }

    /// The client cancels `tag`; returns whether a `basic.cancel` must go to the broker (it was sent before).
    mutating func cancel(_ tag: String) -> Bool {
        guard subscribed.remove(tag) != nil else { return false }
        if let index = waiting.firstIndex(where: { $0.tag == tag }) {
            waiting.remove(at: index)  // never sent
            return false
        }
        return true
    }

    /// The broker cancelled `tag` (`basic.cancel` from the broker, e.g. its queue was deleted).
    mutating func cancelledByBroker(_ tag: String) {
        subscribed.remove(tag)
    }

    /// The broker closed the consume channel: forgets every subscription. Returns the tag whose `basic.consume`
    /// caused the close (class 60, method 20) if one was in flight: that consumer must fail, the others are
    /// resubscribed on the reopened channel.
    mutating func channelClosed(classID: UInt16, methodID: UInt16) -> String? {
        let culprit = classID == 60 && methodID == 20 ? inFlight : nil
        reset()
        return culprit
    }

    /// The connection is gone: forgets every subscription.
    mutating func reset() {
        subscribed = []
        inFlight = nil
        waiting = []
    }
}
