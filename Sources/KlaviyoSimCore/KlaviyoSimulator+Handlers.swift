import Foundation

extension KlaviyoSimulator {
    /// Dispatches a validated call to its operation handler.
    func perform(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        switch call.operation.operationId {
        case "get_accounts": return getAccounts(call)
        case "get_account": return try getAccount(call)
        case "create_or_update_profile": return try createOrUpdateProfile(call)
        case "create_profile": return try createProfile(call)
        case "get_profile": return try getProfile(call)
        case "get_profiles": return try getProfiles(call)
        case "update_profile": return try updateProfile(call)
        case "create_list": return try createList(call)
        case "get_lists": return try getLists(call)
        case "get_list": return try getList(call)
        case "add_profiles_to_list": return try changeListMembers(call, add: true)
        case "remove_profiles_from_list": return try changeListMembers(call, add: false)
        case "create_event": return try createEvent(call)
        case "bulk_create_events": return try bulkCreateEvents(call)
        case "bulk_import_profiles": return try bulkImportProfiles(call)
        case "get_bulk_import_profiles_job": return try getImportJob(call)
        case "get_errors_for_bulk_import_profiles_job": return try getImportErrors(call)
        case "get_bulk_import_profiles_jobs": return try getImportJobs(call)
        case "bulk_subscribe_profiles": return try bulkSubscription(call, subscribe: true)
        case "bulk_unsubscribe_profiles": return try bulkSubscription(call, subscribe: false)
        case "get_campaigns": return try getCampaigns(call)
        case "create_campaign": return try createCampaign(call)
        case "get_campaign": return try getCampaign(call)
        case "update_campaign": return try updateCampaign(call)
        case "send_campaign": return try sendCampaign(call)
        case "get_campaign_send_job": return try getCampaignSendJob(call)
        case "cancel_campaign_send": return try cancelCampaignSend(call)
        case "get_flows": return getFlows(call)
        case "get_flow": return try getFlow(call)
        case "update_flow": return try updateFlow(call)
        case "query_campaign_values": return try valuesReport(call, kind: .campaign)
        case "query_flow_values": return try valuesReport(call, kind: .flow)
        default: throw .notFound("\(call.operation.operationId) is not implemented by klaviyo-sim.")
        }
    }

    /// The account resource (`AccountResponseObjectResource`).
    static func accountResource(_ account: SimAccount, base: String) -> JSONValue {
        let slug = account.name.lowercased().filter { $0.isLetter || $0.isNumber }
        let domain = "\(slug.isEmpty ? "store" : slug).example.com"
        return [
            "type": "account",
            "id": .string(account.klaviyoAccountId),
            "attributes": [
                "test_account": false,
                "contact_information": [
                    "default_sender_name": .string(account.name),
                    "default_sender_email": .string("hello@\(domain)"),
                    "website_url": .string("https://www.\(domain)"),
                    "organization_name": .string(account.name),
                    "street_address": [
                        "address1": "125 Summer Street", "address2": "5th Floor", "city": "Boston", "region": "MA",
                        "country": "US", "zip": "02110",
                    ],
                ],
                "industry": "Retail",
                "timezone": "America/New_York",
                "preferred_currency": "USD",
                "public_api_key": .string(account.publicApiKey),
                "locale": "en-US",
            ],
            "links": ["self": .string("\(base)/api/accounts/\(account.klaviyoAccountId)/")],
        ]
    }

    func getAccounts(_ call: APICall) -> APIResult {
        let account = call.caller.box.account
        return APIResult(
            status: 200,
            body: [
                "data": [Self.accountResource(account, base: call.base)],
                "links": ["self": .string("\(call.base)/api/accounts/")],
            ])
    }

    func getAccount(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let account = call.caller.box.account
        guard call.parameters.first == account.klaviyoAccountId else { throw .notFound() }
        return APIResult(status: 200, body: ["data": Self.accountResource(account, base: call.base)])
    }
}
