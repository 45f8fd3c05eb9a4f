import Relay
import Testing

@Suite("Encryption key ring")
struct EncryptionKeyRingTests {
    let k1 = "k1:" + String(repeating: "A", count: 43) + "="
    let k2 = try! EncryptionKeyRing.generateSpecification(keyID: "k2")

    @Test func sealsAndOpensBoundToContext() throws {
        let ring = try EncryptionKeyRing(specification: k1)
        let sealed = try ring.seal("pk_supersecret", context: "kr:{a}:conn#api_key")
        #expect(sealed.keyID == "k1")
        #expect(!sealed.ciphertext.contains("supersecret"))
        #expect(try ring.open(sealed, context: "kr:{a}:conn#api_key") == "pk_supersecret")
        #expect(throws: (any Error).self) { try ring.open(sealed, context: "kr:{b}:conn#api_key") }
        let again = try ring.seal("pk_supersecret", context: "kr:{a}:conn#api_key")
        #expect(again.ciphertext != sealed.ciphertext, "fresh nonce per seal")
    }

    @Test func rotationWritesWithTheNewKeyAndStillReadsTheOld() throws {
        let old = try EncryptionKeyRing(specification: k1)
        let sealedWithOld = try old.seal("token", context: "c")
        let rotated = try EncryptionKeyRing(specification: "\(k2),\(k1)")
        #expect(rotated.currentKeyID == "k2")
        #expect(try rotated.open(sealedWithOld, context: "c") == "token")
        #expect(try rotated.seal("token", context: "c").keyID == "k2")
        let newOnly = try EncryptionKeyRing(specification: k2)
        #expect(throws: (any Error).self) { try newOnly.open(sealedWithOld, context: "c") }
    }

    @Test(arguments: ["", "nokey", "k1:", "k1:c2hvcnQ=", "bad id:" + String(repeating: "A", count: 43) + "="])
    func refusesBadSpecificationsWithoutEchoingThem(_ specification: String) {
        do {
            _ = try EncryptionKeyRing(specification: specification)
            Issue.record("accepted \(specification)")
        } catch {
            #expect(!error.description.contains("c2hvcnQ"))
        }
    }

    /// A stored secret names its key with an ASCII id of at most 64 characters (anything else is not read back as
    /// a ciphertext), so the ring and `generate-key` refuse other ids, with an error that says what an id may be.
    @Test(arguments: [String(repeating: "k", count: 65), "clé", "ключ", "k١"])
    func refusesKeyIDsThatStoredSecretsCouldNotName(_ keyID: String) {
        let material = String(repeating: "A", count: 43) + "="
        for attempt in [
            { try EncryptionKeyRing(specification: "\(keyID):\(material)").description },
            { try EncryptionKeyRing.generateSpecification(keyID: keyID) },
        ] as [() throws -> String] {
            #expect {
                _ = try attempt()
            } throws: { error in
                let message = (error as? RelayError)?.message ?? ""
                return message.contains("ASCII") && message.contains("64")
            }
        }
    }

    @Test func acceptsTheLongestKeyID() throws {
        let keyID = String(repeating: "k", count: 64)
        let ring = try EncryptionKeyRing(specification: try EncryptionKeyRing.generateSpecification(keyID: keyID))
        #expect(ring.currentKeyID == keyID)
        let sealed = try ring.seal("token", context: "c")
        #expect(try ring.open(try #require(SealedSecret(stored: sealed.stored)), context: "c") == "token")
    }

    @Test func descriptionShowsOnlyKeyIDs() throws {
        let ring = try EncryptionKeyRing(specification: k1)
        #expect(!ring.description.contains("AAAA"))
        #expect(ring.description.contains("k1"))
    }
}
