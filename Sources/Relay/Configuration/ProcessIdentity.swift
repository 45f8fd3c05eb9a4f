import Foundation

/// Names this process in messages it publishes (`app_id`), so ops can tell which consumer produced what.
public enum ProcessIdentity {
    /// `klaviyo-relay@<host>:<pid>`.
    public static let appID =
        "klaviyo-relay@\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
}
