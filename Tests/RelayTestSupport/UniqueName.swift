import Foundation

/// `<prefix>-<12 random hex digits>`: queue prefixes, accounts and keys that never collide across tests or runs.
public func uniqueName(_ prefix: String, length: Int = 12) -> String {
    "\(prefix)-\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(length))"
}
