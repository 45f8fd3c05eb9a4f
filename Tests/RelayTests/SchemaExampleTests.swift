import Foundation
import Klaviyo
import Relay
import Testing

/// Every example in schemas/examples runs through the Swift decoders; each must land on the side its folder
/// names. When the test command has run the standard validator first (SCHEMA_VERDICTS points at its
/// verdicts), the two must also agree on every single file.
@Suite("Schema examples")
struct SchemaExampleTests {
    static let schemasRoot: URL = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("schemas")
    }()

    struct Example: CustomStringConvertible, Sendable {
        var relativePath: String
        var schema: String
        var expectedValid: Bool
        var description: String { relativePath }
    }

    static let examples: [Example] = {
        let root = schemasRoot.appendingPathComponent("examples")
        var found: [Example] = []
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        for folder in folders.sorted() {
            for verdict in ["valid", "invalid"] {
                let directory = root.appendingPathComponent(folder).appendingPathComponent(verdict)
                let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
                for file in files.sorted() where file.hasSuffix(".json") {
                    found.append(
                        Example(
                            relativePath: "examples/\(folder)/\(verdict)/\(file)", schema: folder,
                            expectedValid: verdict == "valid"))
                }
            }
        }
        return found
    }()

    /// Whether the Swift side accepts an example.
    static func swiftAccepts(_ example: Example) throws -> Bool {
        let data = try Data(contentsOf: schemasRoot.appendingPathComponent(example.relativePath))
        switch example.schema {
        case "result":
            do {
                try ContractValidator.validateResult(try JSONValue.parse(Array(data)))
                return true
            } catch { return false }
        case "dead-letter-headers":
            do {
                try ContractValidator.validateDeadLetterHeaders(try JSONValue.parse(Array(data)))
                return true
            } catch { return false }
        case "connection-event":
            do {
                try ContractValidator.validateConnectionEvent(try JSONValue.parse(Array(data)))
                return true
            } catch { return false }
        default:
            switch CommandDecoder().decode(Array(data)) {
            case .success(let command):
                // A command schema example must also be of that schema's type.
                return example.schema == "envelope" || command.type.rawValue == example.schema
            case .failure:
                return false
            }
        }
    }

    @Test func everySchemaHasValidAndInvalidExamples() {
        let schemas = [
            "envelope", "profile.upsert", "profile.update", "profile.get", "result", "dead-letter-headers",
            "connection-event",
            "event.track", "event.bulk_track", "list.create", "list.add_profiles", "list.remove_profiles",
            "subscription.subscribe", "subscription.unsubscribe", "account.get", "flow.list", "flow.update_status",
            "campaign.create", "campaign.get", "campaign.cancel_send", "campaign.report", "flow.report",
        ]
        for schema in schemas {
            #expect(
                Self.examples.contains { $0.schema == schema && $0.expectedValid }, "\(schema) has no valid example")
            #expect(
                Self.examples.contains { $0.schema == schema && !$0.expectedValid }, "\(schema) has no invalid example")
        }
    }

    @Test(arguments: SchemaExampleTests.examples)
    func swiftDecoderMatchesTheFolder(_ example: Example) throws {
        #expect(try Self.swiftAccepts(example) == example.expectedValid)
    }

    @Test func swiftAndStandardValidatorAgreeOnEveryFile() throws {
        var path = ProcessInfo.processInfo.environment["SCHEMA_VERDICTS"] ?? ""
        if path.isEmpty {
            // Run the standard validator (Python jsonschema) ourselves.
            path =
                FileManager.default.temporaryDirectory.appendingPathComponent("verdicts-\(UUID().uuidString).json").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3",
                Self.schemasRoot.deletingLastPathComponent().appendingPathComponent("scripts/check/check-schemas.py")
                    .path,
                "--verdicts", path,
            ]
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "the standard validator disagrees with the example folders")
        }
        let verdicts = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        let table = try #require(verdicts.objectValue)
        #expect(table.count == Self.examples.count, "both sides must see the same files")
        for example in Self.examples {
            guard case .bool(let standard)? = table[example.relativePath] else {
                Issue.record("standard validator has no verdict for \(example.relativePath)")
                continue
            }
            #expect(try Self.swiftAccepts(example) == standard, "disagreement on \(example.relativePath)")
        }
    }
}
