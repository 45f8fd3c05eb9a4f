/// One operation of Klaviyo's API as the OpenAPI spec describes it (see `Generated/KlaviyoOperations.swift`).
public struct KlaviyoOperation: Sendable {
    /// HTTP method in upper case.
    public var method: String
    /// Path template, e.g. `/api/profiles/{id}`.
    public var path: String
    /// The spec's `operationId`, e.g. `create_or_update_profile`.
    public var operationId: String
    /// Burst limit: requests per 1-second window.
    public var burst: Int?
    /// Steady limit: requests per 60-second window.
    public var steady: Int?
    /// Daily cap, where the spec has one.
    public var daily: Int?
    /// Scopes the credential needs (`x-klaviyo-scopes`).
    public var scopes: [String]
    /// Request body schema (refs resolved) for operations the simulator implements, as JSON text.
    public var requestSchema: String?

    /// Creates an operation row.
    public init(
        method: String, path: String, operationId: String, burst: Int?, steady: Int?, daily: Int?,
        scopes: [String], requestSchema: String?
    ) {
        self.method = method
        self.path = path
        self.operationId = operationId
        self.burst = burst
        self.steady = steady
        self.daily = daily
        self.scopes = scopes
        self.requestSchema = requestSchema
    }

    /// `"POST /api/profile-import"`: the key used in stats.
    public var displayName: String { "\(method) \(path)" }
}
