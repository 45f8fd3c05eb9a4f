/// A stored connection whose secrets cannot be decrypted: the key id it names is not in
/// `RELAY_ENCRYPTION_KEY`, or the ciphertext fails authentication (wrong key, corrupted or copied field); or whose
/// record is not a hash at all (`WRONGTYPE`: a key written by hand or by another program).
///
/// This is not an outage: retrying cannot help until an operator restores the key or the customer reconnects,
/// so commands of that account are dead-lettered `credential_unreadable` at once (replayable), and the settings
/// page offers to reconnect. The description names the account, the field and the key id, never key material
/// or plaintext.
public struct CredentialUnreadable: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the secret could not be read.
    public enum Reason: String, Sendable, Hashable {
        /// The key id stored beside the ciphertext is not configured.
        case unknownKeyID = "unknown_key_id"
        /// The key is configured but the ciphertext did not authenticate (or is not base64 / not `kid:…`).
        case decryptionFailed = "decryption_failed"
        /// The connection key holds another Redis type than a hash (the field is `connection`).
        case notAHash = "not_a_hash"
    }

    /// The HeroPixel account.
    public var accountID: String
    /// The hash field (`api_key`, `access_token`, `refresh_token`).
    public var field: String
    /// The key id stored beside the ciphertext (empty when the field is not `kid:ciphertext` at all).
    public var keyID: String
    /// Why.
    public var reason: Reason

    /// Creates an error.
    public init(accountID: String, field: String, keyID: String, reason: Reason) {
        self.accountID = accountID
        self.field = field
        self.keyID = keyID
        self.reason = reason
    }

    /// Names account, field and key id only.
    public var description: String {
        switch reason {
        case .unknownKeyID:
            return "the \(field) of account \(accountID) is sealed with key id \(keyID), which RELAY_ENCRYPTION_KEY "
                + "does not hold (restore that key, then replay; or have the customer reconnect)"
        case .decryptionFailed:
            return "the \(field) of account \(accountID) (key id \(keyID.isEmpty ? "none" : keyID)) does not "
                + "decrypt (wrong key material for that id, or a corrupted field); have the customer reconnect"
        case .notAHash:
            return "the \(field) record of account \(accountID) in Redis is not a hash (WRONGTYPE: written by "
                + "something other than the relay); have the customer reconnect, which replaces it"
        }
    }
}
