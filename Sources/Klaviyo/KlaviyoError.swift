/// A failed Klaviyo call: an error status, a transport failure, or an unreadable response.
///
/// Messages never contain credentials.
public struct KlaviyoError: Error, Sendable, CustomStringConvertible {
    /// Extensible error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name.
        public let rawValue: String
        /// Codes are the ones below: their raw values reach dead-letter details and logs, so they stay as they are.
        init(_ rawValue: String) { self.rawValue = rawValue }
        /// A 4xx that no retry fixes (400, 404, 405, 410, 413, 415, …).
        public static let rejected = Code("rejected")
        /// 401: missing, invalid or revoked credential.
        public static let unauthorized = Code("unauthorized")
        /// 403: valid credential without the scope.
        public static let forbidden = Code("forbidden")
        /// 409: conflict (duplicate profile).
        public static let conflict = Code("conflict")
        /// 429: throttled.
        public static let throttled = Code("throttled")
        /// The relay's own rate limiter held the call back before it was sent (`retryAfter` says how long
        /// until it would be admitted; `requestMayHaveBeenSent` is false). Retried like a 429.
        public static let heldBack = Code("rate_limited")
        /// The relay's call gate could not decide (its store was unreachable, or the wait was cancelled);
        /// nothing was sent.
        public static let gateUnavailable = Code("gate_unavailable")
        /// 5xx.
        public static let serverError = Code("server_error")
        /// No response (connect failure, reset, timeout).
        public static let transport = Code("transport")
        /// A 2xx whose body could not be understood.
        public static let invalidResponse = Code("invalid_response")
        /// The relay refused to send a request that Klaviyo would reject (too large, malformed).
        public static let invalidRequest = Code("invalid_request")
        /// The name.
        public var description: String { rawValue }
    }

    /// What failed.
    public var code: Code
    /// HTTP status, when a response arrived.
    public var status: Int?
    /// The spec's operationId of the call.
    public var operationID: String
    /// Human-readable summary.
    public var message: String
    /// Klaviyo's `errors` array, when the body had one.
    public var apiErrors: [KlaviyoAPIError]
    /// `Retry-After` of a 429 (``KlaviyoClient`` clamps it to `0...Clamp.maxRetryAfter`, and
    /// ``retryDecision`` clamps it again, so a value set by hand cannot overflow a caller either).
    public var retryAfter: Duration?
    /// Whether the request may have reached Klaviyo (only meaningful for transport failures).
    public var requestMayHaveBeenSent: Bool
    /// Whether the call used an OAuth token (a 401 then means "refresh and retry once").
    public var usedOAuth: Bool

    /// Creates an error.
    public init(
        code: Code, status: Int? = nil, operationID: String, message: String, apiErrors: [KlaviyoAPIError] = [],
        retryAfter: Duration? = nil, requestMayHaveBeenSent: Bool = true, usedOAuth: Bool = false
    ) {
        self.code = code
        self.status = status
        self.operationID = operationID
        self.message = message
        self.apiErrors = apiErrors
        self.retryAfter = retryAfter
        self.requestMayHaveBeenSent = requestMayHaveBeenSent
        self.usedOAuth = usedOAuth
    }

    /// The retry classification of docs/architecture.md (step 4, "Klaviyo call").
    public var retryDecision: KlaviyoRetryDecision {
        switch code {
        case .throttled, .heldBack:
            return .retryAfter(retryAfter.map(Clamp.retryAfter) ?? .seconds(1))
        case .gateUnavailable:
            return .backoff
        case .serverError:
            switch status {
            // 503: not taken in. 504 and 524 are gateway timeouts after the request was passed on: it may have been
            // applied, so only an idempotent call is repeated (a non-idempotent POST only when its command looks
            // Klaviyo's state up before sending again, as campaign.create and campaign.send do).
            case 503: return .backoff
            default: return .backoffIfIdempotent
            }
        case .transport:
            return requestMayHaveBeenSent ? .backoffIfIdempotent : .backoff
        case .unauthorized:
            return usedOAuth ? .refreshCredential : .permanent
        default:
            return .permanent
        }
    }

    /// Whether some retry could succeed (ignoring idempotency).
    public var isRetriable: Bool {
        switch retryDecision {
        case .permanent: return false
        default: return true
        }
    }

    /// One line: operation, status and Klaviyo's reasons.
    public var description: String {
        let statusText = status.map { "HTTP \($0)" } ?? code.rawValue
        return "\(operationID) failed (\(statusText)): \(message)"
    }
}
