import Foundation

/// Durations for people: `0.4s`, `12s`, `3m05s`.
enum ReportDuration {
    static func text(_ value: TimeInterval) -> String {
        if value < 10 { return String(format: "%.1fs", value) }
        if value < 60 { return String(format: "%.0fs", value) }
        return String(format: "%dm%02ds", Int(value) / 60, Int(value) % 60)
    }
}
