/// A channel-level failure (broker sent channel.close; close-ok has been sent already).
struct ChannelFailure: Error {
    var error: AMQPError
    var classID: UInt16 = 0
    var methodID: UInt16 = 0
}
