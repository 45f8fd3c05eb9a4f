extension ProfileRecord {
    /// Writes `{"data":<resource>}` straight to bytes: the same document as `["data": resource(base:)]`, without
    /// building intermediate dictionaries (profile writes are the simulator's hot path).
    func document(base: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1600)
        func raw(_ s: String) { out.append(contentsOf: s.utf8) }
        func string(_ s: String) { JSONValue.writeString(s, into: &out) }
        let selfLink = "\(base)/api/profiles/\(id)/"
        raw(#"{"data":{"type":"profile","id":"#)
        string(id)
        raw(#","attributes":{"#)
        for name in Self.scalarAttributes {
            string(name)
            out.append(UInt8(ascii: ":"))
            (attributes[name] ?? .null).write(into: &out)
            out.append(UInt8(ascii: ","))
        }
        raw(#""location":{"#)
        for (i, name) in Self.locationMembers.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            string(name)
            out.append(UInt8(ascii: ":"))
            (location[name] ?? .null).write(into: &out)
        }
        raw(#"},"properties":"#)
        JSONValue.object(properties).write(into: &out)
        raw(#","created":"#)
        string(created)
        raw(#","updated":"#)
        string(updated)
        raw(#","last_event_date":"#)
        if let lastEventDate { string(lastEventDate) } else { raw("null") }
        raw(#"},"relationships":{"#)
        for (i, name) in ["lists", "segments", "push-tokens"].enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            string(name)
            raw(#":{"links":{"self":"#)
            string("\(selfLink)relationships/\(name)/")
            raw(#","related":"#)
            string("\(selfLink)\(name)/")
            raw("}}")
        }
        raw(#"},"links":{"self":"#)
        string(selfLink)
        raw("}}}")
        return out
    }
}
