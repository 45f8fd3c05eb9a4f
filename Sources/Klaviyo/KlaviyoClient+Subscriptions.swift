/// One profile of a bulk subscribe / unsubscribe job. Consent is given (or withdrawn) for email marketing
/// when `email` is set and for SMS marketing when `phoneNumber` is set.
public struct KlaviyoSubscriber: Sendable, Hashable {
    /// Email address.
    public var email: String?
    /// E.164 phone number.
    public var phoneNumber: String?
    /// When consent was collected (historical imports only).
    public var consentedAt: String?

    /// Creates a subscriber.
    public init(email: String? = nil, phoneNumber: String? = nil, consentedAt: String? = nil) {
        self.email = email
        self.phoneNumber = phoneNumber
        self.consentedAt = consentedAt
    }

    func resource(consent: String) -> JSONValue {
        var attributes: [String: JSONValue] = [:]
        var subscriptions: [String: JSONValue] = [:]
        var marketing: [String: JSONValue] = ["consent": .string(consent)]
        if let consentedAt { marketing["consented_at"] = .string(consentedAt) }
        if let email {
            attributes["email"] = .string(email)
            subscriptions["email"] = ["marketing": .object(marketing)]
        }
        if let phoneNumber {
            attributes["phone_number"] = .string(phoneNumber)
            subscriptions["sms"] = ["marketing": .object(marketing)]
        }
        attributes["subscriptions"] = .object(subscriptions)
        return ["type": "profile", "attributes": .object(attributes)]
    }
}

extension KlaviyoClient {
    /// Klaviyo's limit of profiles per bulk subscribe job.
    public static let maxProfilesPerSubscribeJob = 1000
    /// Klaviyo's limit of profiles per bulk unsubscribe job.
    public static let maxProfilesPerUnsubscribeJob = 100

    /// The request for `POST /api/profile-subscription-bulk-create-jobs` (bulk_subscribe_profiles, 202).
    public static func subscribeProfilesRequest(
        _ profiles: [KlaviyoSubscriber], listID: String?, customSource: String? = nil, historicalImport: Bool = false
    ) -> KlaviyoRequest {
        var attributes: [String: JSONValue] = [
            "profiles": ["data": .array(profiles.map { $0.resource(consent: "SUBSCRIBED") })]
        ]
        if let customSource { attributes["custom_source"] = .string(customSource) }
        if historicalImport { attributes["historical_import"] = true }
        var data: [String: JSONValue] = [
            "type": "profile-subscription-bulk-create-job", "attributes": .object(attributes),
        ]
        if let listID { data["relationships"] = ["list": ["data": ["type": "list", "id": .string(listID)]]] }
        return KlaviyoRequest(
            operationID: "bulk_subscribe_profiles", method: "POST", path: "/api/profile-subscription-bulk-create-jobs",
            body: ["data": .object(data)], isIdempotent: true)
    }

    /// The request for `POST /api/profile-subscription-bulk-delete-jobs` (bulk_unsubscribe_profiles, 202).
    /// Without `listID` Klaviyo unsubscribes the profiles globally.
    public static func unsubscribeProfilesRequest(_ profiles: [KlaviyoSubscriber], listID: String?) -> KlaviyoRequest {
        var data: [String: JSONValue] = [
            "type": "profile-subscription-bulk-delete-job",
            "attributes": ["profiles": ["data": .array(profiles.map { $0.resource(consent: "UNSUBSCRIBED") })]],
        ]
        if let listID { data["relationships"] = ["list": ["data": ["type": "list", "id": .string(listID)]]] }
        return KlaviyoRequest(
            operationID: "bulk_unsubscribe_profiles", method: "POST",
            path: "/api/profile-subscription-bulk-delete-jobs",
            body: ["data": .object(data)], isIdempotent: true)
    }
}
