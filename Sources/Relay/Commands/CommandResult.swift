public import Klaviyo

/// The result message of a processed command (docs/contracts.md, Results), published to the results exchange with
/// routing key `<type>.succeeded` or `<type>.failed` and to the command's `reply_to`.
public struct CommandResult: Sendable, Hashable {
    /// `succeeded` or `failed`.
    public enum Outcome: String, Sendable, Hashable {
        /// Klaviyo did what the command asked.
        case succeeded
        /// The command was processed and its answer is a definitive "no" (e.g. a lookup by id that Klaviyo
        /// does not know); nothing to replay.
        case failed
    }

    /// What Klaviyo answered.
    public struct KlaviyoOutcome: Sendable, Hashable {
        /// HTTP status of the (last) call.
        public var status: Int
        /// Ids of the resources the command touched.
        public var ids: [String]
        /// Response data the publisher asked for (e.g. the profile of `profile.get`).
        public var data: JSONValue?
        /// Job status, for calls that create an asynchronous Klaviyo job.
        public var job: JSONValue?

        /// Creates an outcome.
        public init(status: Int, ids: [String] = [], data: JSONValue? = nil, job: JSONValue? = nil) {
            self.status = status
            self.ids = ids
            self.data = data
            self.job = job
        }
    }

    /// Why the outcome is `failed`.
    public struct Failure: Sendable, Hashable {
        /// Machine code.
        public var code: String
        /// Human-readable detail, without secrets.
        public var detail: String
        /// Klaviyo's error entries, when Klaviyo answered.
        public var klaviyoErrors: [KlaviyoAPIError]

        /// Creates a failure.
        public init(code: String, detail: String, klaviyoErrors: [KlaviyoAPIError] = []) {
            self.code = code
            self.detail = detail
            self.klaviyoErrors = klaviyoErrors
        }
    }

    /// The command's id.
    public var commandID: String
    /// The command's type.
    public var type: String
    /// The command's account.
    public var accountID: String
    /// Outcome.
    public var outcome: Outcome
    /// How many times the relay tried the command.
    public var attempts: Int
    /// What Klaviyo answered.
    public var klaviyo: KlaviyoOutcome?
    /// Why it failed, for `failed`.
    public var error: Failure?
    /// When processing ended (RFC 3339).
    public var completedAt: String
    /// Processing time in milliseconds.
    public var durationMS: Int64
    /// W3C `traceparent` of the command, carried through.
    public var traceparent: String?

    /// Creates a result.
    public init(
        commandID: String, type: String, accountID: String, outcome: Outcome, attempts: Int,
        klaviyo: KlaviyoOutcome?, error: Failure?, completedAt: String, durationMS: Int64, traceparent: String?
    ) {
        self.commandID = commandID
        self.type = type
        self.accountID = accountID
        self.outcome = outcome
        self.attempts = attempts
        self.klaviyo = klaviyo
        self.error = error
        self.completedAt = completedAt
        self.durationMS = durationMS
        self.traceparent = traceparent
    }

    /// The routing key on the results exchange.
    public var routingKey: String { "\(type).\(outcome.rawValue)" }

    /// The JSON document.
    public var jsonValue: JSONValue {
        var members: [String: JSONValue] = [
            "command_id": .string(commandID), "type": .string(type), "account_id": .string(accountID),
            "outcome": .string(outcome.rawValue), "attempts": .int(Int64(attempts)),
            "completed_at": .string(completedAt), "duration_ms": .int(durationMS),
        ]
        if let klaviyo {
            var outcome: [String: JSONValue] = [
                "status": .int(Int64(klaviyo.status)), "ids": .array(klaviyo.ids.map(JSONValue.string)),
            ]
            if let data = klaviyo.data { outcome["data"] = data }
            if let job = klaviyo.job { outcome["job"] = job }
            members["klaviyo"] = .object(outcome)
        } else {
            members["klaviyo"] = .null
        }
        if let error {
            members["error"] = .object([
                "code": .string(error.code), "detail": .string(error.detail),
                "klaviyo_errors": (try? JSONValue.encode(error.klaviyoErrors)) ?? .array([]),
            ])
        } else {
            members["error"] = .null
        }
        if let traceparent { members["traceparent"] = .string(traceparent) }
        return .object(members)
    }

    /// Encoded JSON bytes.
    public func encoded() -> [UInt8] { jsonValue.jsonBytes() }

    /// Reads a result document (used by `publish --wait`, the benchmark and tests).
    public init?(json: JSONValue) {
        guard let commandID = json["command_id"]?.stringValue, let type = json["type"]?.stringValue,
            let accountID = json["account_id"]?.stringValue,
            let outcome = json["outcome"]?.stringValue.flatMap(Outcome.init(rawValue:)),
            case .int(let attempts)? = json["attempts"], let completedAt = json["completed_at"]?.stringValue,
            case .int(let duration)? = json["duration_ms"]
        else { return nil }
        var klaviyo: KlaviyoOutcome?
        if let object = json["klaviyo"], case .int(let status)? = object["status"] {
            klaviyo = KlaviyoOutcome(
                status: Int(status), ids: object["ids"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                data: object["data"], job: object["job"])
        }
        var failure: Failure?
        if let object = json["error"], let code = object["code"]?.stringValue {
            let errors = object["klaviyo_errors"].flatMap { try? JSONValue.decode([KlaviyoAPIError].self, from: $0) }
            failure = Failure(code: code, detail: object["detail"]?.stringValue ?? "", klaviyoErrors: errors ?? [])
        }
        self.init(
            commandID: commandID, type: type, accountID: accountID, outcome: outcome, attempts: Int(attempts),
            klaviyo: klaviyo, error: failure, completedAt: completedAt, durationMS: duration,
            traceparent: json["traceparent"]?.stringValue)
    }
}
