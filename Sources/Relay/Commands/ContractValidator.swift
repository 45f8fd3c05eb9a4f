public import Klaviyo

/// Strict Swift checks of the result and dead-letter-header contracts (`schemas/result.schema.json`,
/// `schemas/dead-letter-headers.schema.json`), used by tooling and by the contract tests that make sure
/// the Swift side and the JSON Schemas agree on every example.
public enum ContractValidator {
    static let resultKeys: Set<String> = [
        "command_id", "type", "account_id", "outcome", "attempts", "klaviyo", "error", "completed_at", "duration_ms",
        "traceparent",
    ]

    /// Validates a result document.
    public static func validateResult(_ document: JSONValue) throws(RelayError) {
        do throws(SchemaViolation) {
            let members = try Check.object(document, at: "")
            try Check.onlyKeys(members, resultKeys, at: "")
            _ = try Check.token(members["command_id"], at: "/command_id")
            let type = try Check.string(members["type"], at: "/type", maxLength: 64)
            guard CommandType(rawValue: type) != nil else {
                throw SchemaViolation(pointer: "/type", message: "unknown command type")
            }
            _ = try Check.token(members["account_id"], at: "/account_id")
            let outcome = try Check.string(members["outcome"], at: "/outcome")
            guard outcome == "succeeded" || outcome == "failed" else {
                throw SchemaViolation(pointer: "/outcome", message: "must be succeeded or failed")
            }
            guard case .int(let attempts)? = members["attempts"], attempts >= 1 else {
                throw SchemaViolation(pointer: "/attempts", message: "must be an integer ≥ 1")
            }
            guard let completed = members["completed_at"]?.stringValue, Check.isRFC3339(completed) else {
                throw SchemaViolation(pointer: "/completed_at", message: "must be an RFC 3339 date-time")
            }
            guard case .int(let duration)? = members["duration_ms"], duration >= 0 else {
                throw SchemaViolation(pointer: "/duration_ms", message: "must be an integer ≥ 0")
            }
            if let trace = members["traceparent"] { _ = try Check.string(trace, at: "/traceparent", minLength: 0) }
            guard let klaviyo = members["klaviyo"] else {
                throw SchemaViolation(pointer: "/klaviyo", message: "is required")
            }
            if !klaviyo.isNull {
                let object = try Check.object(klaviyo, at: "/klaviyo")
                try Check.onlyKeys(object, ["status", "ids", "data", "job"], at: "/klaviyo")
                guard case .int(let status)? = object["status"], (100...599).contains(status) else {
                    throw SchemaViolation(pointer: "/klaviyo/status", message: "must be an HTTP status integer")
                }
                guard let ids = object["ids"]?.arrayValue, ids.allSatisfy({ $0.stringValue != nil }) else {
                    throw SchemaViolation(pointer: "/klaviyo/ids", message: "must be an array of strings")
                }
                if let job = object["job"] { _ = try Check.object(job, at: "/klaviyo/job") }
            } else if outcome == "succeeded" {
                throw SchemaViolation(pointer: "/klaviyo", message: "must be an object when the outcome is succeeded")
            }
            guard let error = members["error"] else { throw SchemaViolation(pointer: "/error", message: "is required") }
            if error.isNull {
                if outcome == "failed" { throw SchemaViolation(pointer: "/error", message: "is required when failed") }
            } else {
                if outcome == "succeeded" {
                    throw SchemaViolation(pointer: "/error", message: "must be null when the outcome is succeeded")
                }
                let object = try Check.object(error, at: "/error")
                try Check.onlyKeys(object, ["code", "detail", "klaviyo_errors"], at: "/error")
                _ = try Check.string(object["code"], at: "/error/code")
                _ = try Check.string(object["detail"], at: "/error/detail", minLength: 0)
                guard let list = object["klaviyo_errors"]?.arrayValue else {
                    throw SchemaViolation(pointer: "/error/klaviyo_errors", message: "must be an array")
                }
                let allowed: Set<String> = [
                    "id", "status", "code", "title", "detail", "source_pointer", "source_parameter",
                    "duplicate_profile_id",
                ]
                for (index, entry) in list.enumerated() {
                    let pointer = "/error/klaviyo_errors/\(index)"
                    let fields = try Check.object(entry, at: pointer)
                    try Check.onlyKeys(fields, allowed, at: pointer)
                    for (key, value) in fields {
                        if key == "status" {
                            guard case .int = value else {
                                throw SchemaViolation(pointer: pointer + "/status", message: "must be an integer")
                            }
                        } else {
                            _ = try Check.string(value, at: pointer + "/" + key, minLength: 0)
                        }
                    }
                }
            }
        } catch {
            throw RelayError(code: .contractViolation, message: error.detail)
        }
    }

    /// Dead-letter error codes of the contract.
    public static let deadLetterCodes: Set<String> = [
        "not_json", "too_large", "schema_invalid", "unknown_type", "unsupported_type", "not_connected",
        "reauth_required", "klaviyo_rejected", "retries_exhausted", "delivery_limit",
        "id_conflict", "credential_unreadable", "unroutable", "reply_to_not_allowed",
    ]

    /// Validates dead-letter headers (as a JSON object of header name to value).
    public static func validateDeadLetterHeaders(_ headers: JSONValue) throws(RelayError) {
        do throws(SchemaViolation) {
            let members = try Check.object(headers, at: "")
            let code = try Check.string(members[DeadLetter.Header.errorCode], at: "/x-relay-error-code")
            guard deadLetterCodes.contains(code) else {
                throw SchemaViolation(pointer: "/x-relay-error-code", message: "unknown code \(code)")
            }
            _ = try Check.string(
                members[DeadLetter.Header.errorDetail], at: "/x-relay-error-detail", minLength: 0,
                maxLength: DeadLetter.maxDetailLength)
            guard case .int(let attempts)? = members[DeadLetter.Header.attempts], attempts >= 1 else {
                throw SchemaViolation(pointer: "/x-relay-attempts", message: "must be an integer ≥ 1")
            }
            for key in [DeadLetter.Header.firstFailedAt, DeadLetter.Header.lastFailedAt] {
                guard let text = members[key]?.stringValue, Check.isRFC3339(text) else {
                    throw SchemaViolation(pointer: "/" + key, message: "must be an RFC 3339 date-time")
                }
            }
            _ = try Check.string(
                members[DeadLetter.Header.originalRoutingKey], at: "/x-original-routing-key", minLength: 0)
            _ = try Check.string(members[DeadLetter.Header.originalExchange], at: "/x-original-exchange", minLength: 0)
            for (key, limit) in [
                (DeadLetter.Header.commandID, 128), (DeadLetter.Header.accountID, 128), (DeadLetter.Header.type, 64),
            ] {
                if let value = members[key] {
                    _ = try Check.string(value, at: "/" + key, minLength: 0, maxLength: limit)
                }
            }
            if let value = members["traceparent"] { _ = try Check.string(value, at: "/traceparent", minLength: 0) }
            if let value = members[HeaderSeal.header] {
                let seal = try Check.string(value, at: "/x-relay-seal", minLength: 64, maxLength: 64)
                guard seal.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
                    throw SchemaViolation(pointer: "/x-relay-seal", message: "must be 64 lowercase hex digits")
                }
            }
        } catch {
            throw RelayError(code: .contractViolation, message: error.detail)
        }
    }

    /// States a connection event may announce (`schemas/connection-event.schema.json`).
    public static let connectionStates: Set<String> = ["connected", "disconnected", "reauth_required"]

    /// Validates a connection event body against `schemas/connection-event.schema.json`: `account_id` (non-empty
    /// string), `state` (one of ``connectionStates``), `at` (RFC 3339), optional `reason` (a string).
    public static func validateConnectionEvent(_ document: JSONValue) throws(RelayError) {
        do throws(SchemaViolation) {
            let members = try Check.object(document, at: "")
            _ = try Check.string(members["account_id"], at: "/account_id")
            let state = try Check.string(members["state"], at: "/state")
            guard connectionStates.contains(state) else {
                throw SchemaViolation(pointer: "/state", message: "must be connected, disconnected or reauth_required")
            }
            let at = try Check.string(members["at"], at: "/at")
            guard Check.isRFC3339(at) else {
                throw SchemaViolation(pointer: "/at", message: "must be an RFC 3339 date-time")
            }
            if let reason = members["reason"] { _ = try Check.string(reason, at: "/reason", minLength: 0) }
        } catch {
            throw RelayError(code: .contractViolation, message: error.detail)
        }
    }
}
