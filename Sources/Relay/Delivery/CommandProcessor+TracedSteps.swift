import AMQP
import Klaviyo
import Logging
import Tracing

extension CommandProcessor {
    /// Parses and validates the body, in a `relay.decode` span (a refused body: its dead-letter code on the span,
    /// which is then an error).
    func decode(_ delivery: AMQPDelivery) -> Result<CommandEnvelope, CommandRejection> {
        CommandTracing.withSpan(
            "relay.decode",
            annotate: { decoded, span in
                guard case .failure(let rejection) = decoded else { return }
                span.attributes[CommandTracing.Attribute.decodeRejection] = rejection.code.rawValue
                span.setStatus(SpanStatus(code: .error))
            },
            { decoder.decode(delivery.body) })
    }

    /// The account's connection with a usable credential, in a `relay.credential` span: the cached or stored
    /// record (decrypted), admitted by its state, and for OAuth a token valid for the refresh margin (a refresh, if
    /// one is needed, is a `relay.token.refresh` child). A refusal is the action that ends the command; an
    /// admitted connection without a credential is left to ``admit(_:)``.
    func usableConnection(for command: CommandEnvelope, attempts: Int, logger: Logger) async throws -> Admission {
        try await CommandTracing.withSpan(
            "relay.credential",
            annotate: { admission, span in
                switch admission {
                case .admitted(let connection):
                    span.attributes[CommandTracing.Attribute.credentialMethod] = connection.method.rawValue
                    if connection.credential == nil {
                        // admit(_:) dead-letters it `not_connected`.
                        span.attributes[CommandTracing.Attribute.credentialRefusal] =
                            DeadLetterCode.notConnected.rawValue
                        span.setStatus(SpanStatus(code: .error))
                    }
                case .refused(let action):
                    if case .deadLetter(let code, _, _, _) = action {
                        span.attributes[CommandTracing.Attribute.credentialRefusal] = code.rawValue
                    }
                    span.setStatus(SpanStatus(code: .error))
                }
            },
            { try await loadConnection(for: command, attempts: attempts, logger: logger) })
    }

    /// ``usableConnection(for:attempts:logger:)`` without its span.
    private func loadConnection(for command: CommandEnvelope, attempts: Int, logger: Logger) async throws -> Admission {
        // An unreadable credential is not an outage: no retry, a dead letter at once (replayable).
        let stored: ConnectionRecord?
        switch try await infrastructure("credential lookup", logger: logger, { try await lookUpCredential(command) }) {
        case .success(let record):
            stored = record
        case .failure(let unreadable):
            noteCredentialUnreadable(unreadable, logger: logger)
            return .refused(
                .deadLetter(
                    code: .credentialUnreadable, detail: unreadable.description, attempts: attempts,
                    firstFailedAt: nil))
        }
        var connection: ConnectionRecord
        switch Self.admission(of: stored, accountID: command.accountID, attempts: attempts) {
        case .admitted(let admitted): connection = admitted
        case .refused(let action): return .refused(action)
        }
        if connection.method == .oauth, let tokenManager {
            switch try await oauthConnection(
                connection, tokenManager: tokenManager, afterUnauthorized: false, logger: logger)
            {
            case .success(let usable):
                connection = usable
            case .failure(let rejection):
                return .refused(
                    .deadLetter(code: rejection.code, detail: rejection.detail, attempts: attempts, firstFailedAt: nil))
            }
        }
        return .admitted(connection)
    }
}
