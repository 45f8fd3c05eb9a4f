/// One event as the relay sends it to Klaviyo (`POST /api/events` or inside a bulk job).
public struct KlaviyoEvent: Sendable, Hashable {
    /// Metric name, e.g. `Placed Order`.
    public var metric: String
    /// Profile identifiers (`email`, `phone_number`, `external_id`).
    public var profile: [String: JSONValue]
    /// Event properties.
    public var properties: [String: JSONValue]
    /// RFC 3339 time, already truncated to the second.
    public var time: String
    /// Deterministic deduplication key.
    public var uniqueID: String
    /// Optional monetary value.
    public var value: JSONValue?
    /// Optional ISO 4217 currency of `value`.
    public var valueCurrency: String?

    /// Creates an event.
    public init(
        metric: String, profile: [String: JSONValue], properties: [String: JSONValue], time: String, uniqueID: String,
        value: JSONValue? = nil, valueCurrency: String? = nil
    ) {
        self.metric = metric
        self.profile = profile
        self.properties = properties
        self.time = time
        self.uniqueID = uniqueID
        self.value = value
        self.valueCurrency = valueCurrency
    }

    /// The metric relationship document.
    var metricDocument: JSONValue {
        ["data": ["type": "metric", "attributes": ["name": .string(metric)]]]
    }

    /// The profile relationship document.
    var profileDocument: JSONValue {
        ["data": ["type": "profile", "attributes": .object(profile)]]
    }

    /// Event attributes without the profile (the bulk job carries it per group).
    var attributesWithoutProfile: [String: JSONValue] {
        var attributes: [String: JSONValue] = [
            "properties": .object(properties), "time": .string(time), "unique_id": .string(uniqueID),
            "metric": metricDocument,
        ]
        if let value { attributes["value"] = value }
        if let valueCurrency { attributes["value_currency"] = .string(valueCurrency) }
        return attributes
    }
}

extension KlaviyoClient {
    /// Klaviyo's limit of events per `POST /api/event-bulk-create-jobs`.
    public static let maxEventsPerBulkJob = 1000

    /// The request for `POST /api/events` (create_event, 202 no body). Idempotent because the event always
    /// carries a `unique_id` and an explicit `time` (docs/contracts.md, `event.track`).
    public static func createEventRequest(_ event: KlaviyoEvent) -> KlaviyoRequest {
        var attributes = event.attributesWithoutProfile
        attributes["profile"] = event.profileDocument
        return KlaviyoRequest(
            operationID: "create_event", method: "POST", path: "/api/events",
            body: ["data": ["type": "event", "attributes": .object(attributes)]], isIdempotent: true)
    }

    /// Tracks one event.
    public func createEvent(_ event: KlaviyoEvent, credential: KlaviyoCredential) async throws(KlaviyoError) -> Int {
        try await send(Self.createEventRequest(event), credential: credential).status
    }

    /// The request for `POST /api/event-bulk-create-jobs` (bulk_create_events, 202 no body): the events
    /// (at most ``maxEventsPerBulkJob``) grouped by profile, groups in order of first appearance.
    ///
    /// Profiles are told apart by their bytes, as Klaviyo tells identifiers apart: `String` equality is Unicode
    /// canonical equivalence, so keyed by the dictionary, `café` and `cafe` + U+0301 were one group, and the
    /// second event went out under the first one's profile.
    public static func bulkCreateEventsRequest(_ events: [KlaviyoEvent]) -> KlaviyoRequest {
        var order: [(key: [UInt8], profile: [String: JSONValue])] = []
        var groups: [[UInt8]: [JSONValue]] = [:]
        for event in events {
            let key = JSONValue.object(event.profile).jsonBytes()
            if groups[key] == nil { order.append((key, event.profile)) }
            groups[key, default: []].append(["type": "event", "attributes": .object(event.attributesWithoutProfile)])
        }
        let data: [JSONValue] = order.map { group in
            [
                "type": "event-bulk-create",
                "attributes": [
                    "profile": ["data": ["type": "profile", "attributes": .object(group.profile)]],
                    "events": ["data": .array(groups[group.key] ?? [])],
                ],
            ]
        }
        return KlaviyoRequest(
            operationID: "bulk_create_events", method: "POST", path: "/api/event-bulk-create-jobs",
            body: [
                "data": [
                    "type": "event-bulk-create-job",
                    "attributes": ["events-bulk-create": ["data": .array(data)]],
                ]
            ], isIdempotent: true)
    }

    /// Submits one bulk event job.
    public func bulkCreateEvents(
        _ events: [KlaviyoEvent], credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> Int
    {
        try await send(Self.bulkCreateEventsRequest(events), credential: credential).status
    }
}
