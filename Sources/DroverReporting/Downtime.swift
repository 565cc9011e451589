import Foundation

/// The downtime a plan announces: its text, and the JSON fields besides `text` (`drover plan --format json`).
public struct Downtime: Sendable, Equatable {
    public var text: String
    public var json: [String: JSONValue]

    public init(text: String, json: [String: JSONValue] = [:]) {
        self.text = text
        self.json = json
    }
}
