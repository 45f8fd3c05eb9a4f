public import HTTPClient

/// klaviyo-sim's admin API answered a call with a non-2xx status.
public struct SimAdminError: Error, CustomStringConvertible {
    /// The call's method.
    public var method: HTTPMethod
    /// The call's path.
    public var path: String
    /// The status it answered.
    public var status: Int
    /// The body it answered.
    public var body: String

    /// `sim <method> <path> → <status> <body>`.
    public var description: String { "sim \(method) \(path) → \(status) \(body)" }
}
