public import Klaviyo

/// What a command did at Klaviyo: the outcome to report.
public struct CommandExecution: Sendable, Hashable {
    /// `succeeded` or a definitive `failed`.
    public var outcome: CommandResult.Outcome
    /// Klaviyo's answer.
    public var klaviyo: CommandResult.KlaviyoOutcome
    /// Why it failed, for `failed`.
    public var failure: CommandResult.Failure?

    /// Creates an execution.
    public init(outcome: CommandResult.Outcome, klaviyo: CommandResult.KlaviyoOutcome, failure: CommandResult.Failure? = nil) {
        self.outcome = outcome
        self.klaviyo = klaviyo
        self.failure = failure
    }
}

/// Executes one validated command against Klaviyo with a credential (one attempt; retries are the
/// processor's).
public struct CommandExecutor: Sendable {
    /// The Klaviyo client.
    public let klaviyo: KlaviyoClient

    /// Creates an executor.
    public init(klaviyo: KlaviyoClient) {
        self.klaviyo = klaviyo
    }

    /// Whether the type is handled by this version.
    public static func supports(_ payload: CommandPayload) -> Bool {
        if case .unsupported = payload { return false }
        return true
    }

    /// Whether repeating the command's calls is harmless.
    public static func isIdempotent(_ payload: CommandPayload) -> Bool {
        switch payload {
        case .profileUpsert, .profileUpdate, .profileGet: return true
        case .unsupported: return false
        }
    }

    /// Runs the command once.
    public func execute(_ command: CommandEnvelope, credential: KlaviyoCredential) async throws(KlaviyoError)
        -> CommandExecution
    {
        switch command.payload {
        case .profileUpsert(let payload):
            let (profile, created) = try await klaviyo.upsertProfile(
                attributes: payload.attributes, id: payload.profileID, credential: credential)
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(status: created ? 201 : 200, ids: [profile.id], data: .object(["created": .bool(created)])))
        case .profileUpdate(let payload):
            let profile = try await klaviyo.updateProfile(
                id: payload.profileID, attributes: payload.attributes, credential: credential)
            return CommandExecution(outcome: .succeeded, klaviyo: .init(status: 200, ids: [profile.id]))
        case .profileGet(let payload):
            let profiles = try await klaviyo.findProfiles(payload.lookup, credential: credential)
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: 200, ids: profiles.map(\.id),
                    data: .object(["profile": profiles.first?.jsonValue ?? .null])))
        case .unsupported:
            throw KlaviyoError(
                code: .invalidRequest, operationID: command.type.rawValue,
                message: "command type \(command.type.rawValue) is not handled by this relay version",
                requestMayHaveBeenSent: false)
        }
    }
}
