public import AMQP
import Klaviyo

/// What one delivery on `klaviyo-relay publish --wait`'s reply queue says about the commands it waits for. The
/// queue receives the commands' results (published to their `reply_to`) and, bound to the dead-letter exchange
/// with `#`, every account's dead letters.
///
/// A dead letter is read as `dlq` reads it (``DeadLetterSummary``): it is a command's by the command's own body, or
/// by `x-relay-command-id` only when the relay sealed it; its code is the relay's unless the broker made it at a
/// delivery limit. So a publisher's forged `x-relay-error-code` and `x-relay-command-id` on its own command,
/// dead-lettered by the broker, never end the wait for someone else's command as failed, and a command of ours the
/// broker dead-lettered (no `x-relay-error-code` at all) ends its wait as `delivery_limit` instead of timing out.
public enum ReplyQueueDelivery: Sendable, Hashable {
    /// A command's result, published by the relay to the command's `reply_to`.
    case result(CommandResult)
    /// A dead letter of the command `commandID`.
    case deadLetter(commandID: String, code: String, detail: String, sealed: Bool)
    /// Neither: a dead letter that names no command, or a body that is not a result.
    case unrecognized

    /// Reads `delivery`: a dead letter when it came through `deadExchange`, a result when its body is one.
    public init(_ delivery: AMQPDelivery, deadExchange: String, seal: HeaderSeal) {
        if delivery.exchange == deadExchange {
            let summary = DeadLetterSummary(delivery, seal: seal)
            guard let commandID = summary.commandID else {
                self = .unrecognized
                return
            }
            self = .deadLetter(
                commandID: commandID, code: summary.code, detail: summary.detail, sealed: summary.sealed)
        } else if let document = try? JSONValue.parse(delivery.body), let result = CommandResult(json: document) {
            self = .result(result)
        } else {
            self = .unrecognized
        }
    }
}
