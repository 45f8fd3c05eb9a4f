import Crypto
import Foundation

/// AES-256-GCM keys for secrets at rest (docs/contracts.md, "Redis"), parsed from `RELAY_ENCRYPTION_KEY`.
///
/// Format: `kid:base64(32 bytes)[,kid:base64(32 bytes)…]`. The first key encrypts; every key decrypts, so
/// keys rotate by prepending a new one and re-encrypting at leisure (`klaviyo-relay connections rekey`); an old
/// key is retired once `klaviyo-relay connections keys` shows no stored field uses it.
/// The description never shows key material.
public struct EncryptionKeyRing: Sendable, CustomStringConvertible {
    /// Key id used for new ciphertexts.
    public let currentKeyID: String
    let keys: [String: SymmetricKey]
    /// All key ids, current first.
    public let keyIDs: [String]

    /// Parses `RELAY_ENCRYPTION_KEY`.
    public init(specification: String) throws(RelayError) {
        var keys: [String: SymmetricKey] = [:]
        var order: [String] = []
        for (position, entry) in specification.split(separator: ",").enumerated() {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            guard let colon = trimmed.firstIndex(of: ":") else {
                throw RelayError(code: .encryptionKey, message: "key #\(position + 1) must look like kid:base64")
            }
            let keyID = String(trimmed[..<colon])
            // The id is not echoed: a mangled entry could put key material in its place.
            guard Self.isWellFormedKeyID(Substring(keyID)) else {
                throw RelayError(
                    code: .encryptionKey, message: "key #\(position + 1) has an invalid key id (\(Self.keyIDRule))")
            }
            guard let material = Data(base64Encoded: String(trimmed[trimmed.index(after: colon)...])),
                material.count == 32
            else {
                throw RelayError(code: .encryptionKey, message: "key \(keyID) must be 32 bytes, base64-encoded")
            }
            guard keys[keyID] == nil else {
                throw RelayError(code: .encryptionKey, message: "key id \(keyID) appears twice")
            }
            keys[keyID] = SymmetricKey(data: material)
            order.append(keyID)
        }
        guard let first = order.first else { throw RelayError(code: .encryptionKey, message: "no key given") }
        self.keys = keys
        self.keyIDs = order
        self.currentKeyID = first
    }

    /// A fixed, publicly known key for `--dev` runs only. Never use it with real customer data.
    public static let development: EncryptionKeyRing = {
        let material = SHA256.hash(data: Data("klaviyo-relay development key: not secret".utf8))
        // The specification is built from a fixed 32-byte digest, so it always parses.
        return try! EncryptionKeyRing(specification: "dev:" + Data(material).base64EncodedString())
    }()

    /// Generates a new random key specification entry (`kid:base64`); `keyID` must be well-formed
    /// (``isWellFormedKeyID(_:)``), or the secrets sealed with the key could not be read back.
    public static func generateSpecification(keyID: String) throws(RelayError) -> String {
        guard isWellFormedKeyID(Substring(keyID)) else {
            throw RelayError(code: .encryptionKey, message: "invalid key id (\(keyIDRule))")
        }
        let key = SymmetricKey(size: .bits256)
        return keyID + ":" + key.withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// Key ids only.
    public var description: String {
        "EncryptionKeyRing(keys: \(keyIDs.joined(separator: ",")), current: \(currentKeyID))"
    }

    /// Encrypts `plaintext` with the current key. `context` is authenticated (not secret) and must be given
    /// again to decrypt: it binds the ciphertext to its place (account and field), so a ciphertext copied to
    /// another account does not decrypt.
    public func seal(_ plaintext: String, context: String) throws -> SealedSecret {
        let box = try AES.GCM.seal(
            Data(plaintext.utf8), using: keys[currentKeyID]!, authenticating: Data(context.utf8))
        guard let combined = box.combined else {
            throw RelayError(code: .encryptionKey, message: "could not encode ciphertext")
        }
        return SealedSecret(keyID: currentKeyID, ciphertext: combined.base64EncodedString())
    }

    /// Whether `keyID` is one of the configured keys (so ciphertexts it names can be opened).
    public func holds(_ keyID: String) -> Bool { keys[keyID] != nil }

    /// What a key id may be, for error messages.
    static let keyIDRule = "1 to 64 ASCII letters, digits, - and _"

    /// Whether `keyID` has the shape of a key id (ASCII letters, digits, `-`, `_`; at most 64 characters). A
    /// stored field whose prefix is not one is not a ciphertext, and its prefix is never echoed (it could be a
    /// secret); so the ring and ``generateSpecification(keyID:)`` accept no other id.
    public static func isWellFormedKeyID(_ keyID: Substring) -> Bool {
        !keyID.isEmpty && keyID.count <= 64
            && keyID.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// Decrypts a sealed secret with the key it names.
    public func open(_ sealed: SealedSecret, context: String) throws -> String {
        guard let key = keys[sealed.keyID] else {
            throw RelayError(
                code: .encryptionKey,
                message: "no key with id \(sealed.keyID) is configured (was it removed too early?)")
        }
        guard let data = Data(base64Encoded: sealed.ciphertext) else {
            throw RelayError(code: .encryptionKey, message: "ciphertext is not base64")
        }
        let plaintext = try AES.GCM.open(
            AES.GCM.SealedBox(combined: data), using: key, authenticating: Data(context.utf8))
        return String(decoding: plaintext, as: UTF8.self)
    }
}

/// A ciphertext and the id of the key that made it.
public struct SealedSecret: Sendable, Hashable {
    /// Key id.
    public var keyID: String
    /// base64(nonce ‖ ciphertext ‖ tag).
    public var ciphertext: String

    /// Creates a value.
    public init(keyID: String, ciphertext: String) {
        self.keyID = keyID
        self.ciphertext = ciphertext
    }

    /// Stored form: `kid:base64`.
    public var stored: String { "\(keyID):\(ciphertext)" }

    /// Parses the stored form.
    public init?(stored: String) {
        guard let colon = stored.firstIndex(of: ":") else { return nil }
        keyID = String(stored[..<colon])
        ciphertext = String(stored[stored.index(after: colon)...])
    }
}
