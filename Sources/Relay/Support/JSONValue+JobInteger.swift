import Klaviyo

extension JSONValue {
    /// An integral number (a JSON `int`, or a whole `double`), for job counters.
    var jobInteger: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9e15: return Int64(value)
        default: return nil
        }
    }
}
