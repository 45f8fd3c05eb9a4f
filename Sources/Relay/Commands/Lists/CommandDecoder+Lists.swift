import Klaviyo

/// Payload validation of `list.create`, `list.add_profiles` and `list.remove_profiles`.
extension CommandDecoder {
    static func decodeListCreate(_ members: [String: JSONValue]) throws(SchemaViolation) -> ListCreatePayload {
        try Check.onlyKeys(members, ["name", "opt_in_process"], at: "/payload")
        let name = try Check.string(members["name"], at: "/payload/name", maxLength: 255)
        var optIn: String?
        if members["opt_in_process"] != nil {
            let text = try Check.string(members["opt_in_process"], at: "/payload/opt_in_process", maxLength: 32)
            guard text == "single_opt_in" || text == "double_opt_in" else {
                throw SchemaViolation(
                    pointer: "/payload/opt_in_process", message: "must be single_opt_in or double_opt_in")
            }
            optIn = text
        }
        return ListCreatePayload(name: name, optInProcess: optIn)
    }

    static func decodeListProfiles(_ members: [String: JSONValue]) throws(SchemaViolation) -> ListProfilesPayload {
        try Check.onlyKeys(members, ["list_id", "profile_ids"], at: "/payload")
        let listID = try Check.resourceID(members["list_id"], at: "/payload/list_id")
        let items = try array(members["profile_ids"], at: "/payload/profile_ids", maxCount: maxItemsPerCommand)
        var ids: [String] = []
        var seen: Set<String> = []
        for (index, item) in items.enumerated() {
            let id = try Check.resourceID(item, at: "/payload/profile_ids/\(index)")
            guard seen.insert(id).inserted else {
                throw SchemaViolation(pointer: "/payload/profile_ids/\(index)", message: "repeats profile id \(id)")
            }
            ids.append(id)
        }
        return ListProfilesPayload(listID: listID, profileIDs: ids)
    }
}
