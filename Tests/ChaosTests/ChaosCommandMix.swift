import Klaviyo
import Relay

/// The chaos tests' random mix of commands (`ChaosTests`, `ClusterChaosTests`): `profile.upsert`, `profile.update` /
/// `list.add_profiles` (with profile ids taken from earlier results), `profile.get`, `event.track` (with a
/// `unique_id`), `subscription.subscribe`, `flow.update_status`, `account.get`, 2 % malformed (not JSON,
/// schema-invalid, unknown type; all with known ids) and 1 % for an account connected late (or never).
struct ChaosCommandMix {
    /// One command to publish.
    struct Command {
        var plan: Planned
        var routingKey: String
        var body: [UInt8]
    }

    /// The connected accounts the commands go to.
    let accounts: [String]
    /// The account of the 1 % that must end `not_connected`.
    let lateAccount: String
    /// Each account's list (from the setup phase's `list.create`).
    let lists: [String: String]
    /// Each account's flow ids (from the setup phase's `flow.list`).
    let flows: [String: [String]]
    /// The emails upserted so far, by account (for `profile.get` and `event.track`).
    private var emails: [String: [String]] = [:]
    private var generator = SystemRandomNumberGenerator()

    init(accounts: [String], lateAccount: String, lists: [String: String], flows: [String: [String]]) {
        self.accounts = accounts
        self.lateAccount = lateAccount
        self.lists = lists
        self.flows = flows
    }

    /// A command envelope.
    static func envelope(_ id: String, _ type: String, _ account: String, _ payload: JSONValue) -> [UInt8] {
        JSONValue.object([
            "id": .string(id), "type": .string(type), "account_id": .string(account),
            "created_at": "2026-11-29T12:00:00Z", "payload": payload,
        ]).jsonBytes()
    }

    /// The command numbered `index`, with id `id`, for a random account; `knownProfiles` gives the Klaviyo profile
    /// ids already upserted for an account.
    mutating func next(index: Int, id: String, knownProfiles: (String) -> [String]) -> Command {
        let account = accounts.randomElement(using: &generator)!
        let roll = Int.random(in: 0..<1000, using: &generator)
        let profiles = knownProfiles(account)
        var plan = Planned(id: id, type: "", account: account)
        var routingKey = ""
        var body: [UInt8] = []
        let email = "\(id)@example.com"
        let envelope = Self.envelope
        switch roll {
        case 0..<20:  // 2 % malformed
            switch roll % 3 {
            case 0:
                plan.type = "malformed.not_json"
                plan.malformedCode = "not_json"
                routingKey = "profile.upsert"
                body = Array("{\"id\":\"\(id)\", not json".utf8)
            case 1:
                plan.type = "malformed.schema_invalid"
                plan.malformedCode = "schema_invalid"
                routingKey = "profile.upsert"
                body = envelope(id, "profile.upsert", account, ["profile": ["email": "not-an-email"]])
            default:
                plan.type = "malformed.unknown_type"
                plan.malformedCode = "unknown_type"
                routingKey = "profile.teleport"
                body = envelope(id, "profile.teleport", account, [:])
            }
        case 20..<30:  // 1 %: an account connected only before the replay
            plan.account = lateAccount
            plan.type = "profile.upsert"
            body = envelope(id, plan.type, lateAccount, ["profile": ["email": .string(email)]])
        case 30..<300:
            plan.type = "profile.upsert"
            emails[account, default: []].append(email)
            body = envelope(
                id, plan.type, account,
                [
                    "profile": [
                        "email": .string(email), "first_name": "Chaos", "properties": ["n": .int(Int64(index))],
                    ]
                ])
        case 300..<400 where !profiles.isEmpty:
            plan.type = "profile.update"
            body = envelope(
                id, plan.type, account,
                [
                    "profile_id": .string(profiles.randomElement(using: &generator)!),
                    "profile": ["properties": ["updated_by": .string(id)]],
                ])
        case 400..<480 where emails[account] != nil:
            plan.type = "profile.get"
            body = envelope(
                id, plan.type, account, ["email": .string(emails[account]!.randomElement(using: &generator)!)])
        case 480..<750:
            plan.type = "event.track"
            let profileEmail = emails[account]?.randomElement(using: &generator) ?? email
            body = envelope(
                id, plan.type, account,
                [
                    "metric": "Chaos Event", "profile": ["email": .string(profileEmail)],
                    "properties": ["n": .int(Int64(index))], "unique_id": .string("\(id)-u"),
                ])
        case 750..<820 where !profiles.isEmpty:
            plan.type = "list.add_profiles"
            body = envelope(
                id, plan.type, account,
                [
                    "list_id": .string(lists[account]!),
                    "profile_ids": [.string(profiles.randomElement(using: &generator)!)],
                ])
        case 820..<890:
            plan.type = "subscription.subscribe"
            body = envelope(
                id, plan.type, account,
                ["list_id": .string(lists[account]!), "profiles": [["email": .string("sub-\(email)")]]])
        case 890..<940:
            plan.type = "flow.update_status"
            body = envelope(
                id, plan.type, account,
                [
                    "flow_id": .string(flows[account]!.randomElement(using: &generator)!),
                    "status": .string(["draft", "manual"].randomElement(using: &generator)!),
                ])
        default:
            plan.type = "account.get"
            body = envelope(id, plan.type, account, [:])
        }
        if routingKey.isEmpty { routingKey = plan.type }
        return Command(plan: plan, routingKey: routingKey, body: body)
    }
}
