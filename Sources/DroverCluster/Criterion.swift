import Foundation

/// One condition of a wait or a check, with what was seen.
public struct Criterion: Sendable, Equatable {
    public var name: String
    public var holds: Bool
    public var detail: String

    public init(_ name: String, _ holds: Bool, _ detail: String) {
        self.name = name
        self.holds = holds
        self.detail = detail
    }
}
