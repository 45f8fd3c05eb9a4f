/// The HTTP methods the client sends.
public enum HTTPMethod: String, Sendable, Hashable {
    /// `GET`
    case GET
    /// `POST`
    case POST
    /// `PUT`
    case PUT
    /// `PATCH`
    case PATCH
    /// `DELETE`
    case DELETE
    /// `HEAD` (the response has no body)
    case HEAD
}
