import Foundation

/// What a run's write probe saw: how often it was asked, how often it failed, and each window in which writes
/// failed (from the first failed answer to the next good one).
public struct WriteProbeReport: Sendable, Equatable {
    /// A time without a good answer; `open`: the run ended before writes succeeded again.
    public struct Window: Sendable, Equatable, Codable {
        public var from: Date
        public var to: Date
        public var open: Bool

        public init(from: Date, to: Date, open: Bool) { (self.from, self.to, self.open) = (from, to, open) }

        public var seconds: Double { max(0, to.timeIntervalSince(from)) }
    }

    /// One answer: when the probe was asked, when it answered, and whether writes succeeded.
    public struct Answer: Sendable, Equatable {
        public var asked: Date
        public var answered: Date
        public var ok: Bool

        public init(asked: Date, answered: Date, ok: Bool) {
            (self.asked, self.answered, self.ok) = (asked, answered, ok)
        }
    }

    /// The probe as the inventory gives it.
    public var probe: String
    public var probes: Int
    public var failed: Int
    public var windows: [Window]

    public init(probe: String, probes: Int, failed: Int, windows: [Window]) {
        (self.probe, self.probes, self.failed, self.windows) = (probe, probes, failed, windows)
    }

    /// The report of `answers` (in the order they were asked): a window opens at the first failed answer's
    /// question and closes at the next good answer.
    public init(probe: String, answers: [Answer]) {
        var windows: [Window] = []
        var openedAt: Date?
        for answer in answers {
            if !answer.ok, openedAt == nil { openedAt = answer.asked }
            if answer.ok, let from = openedAt {
                windows.append(Window(from: from, to: answer.answered, open: false))
                openedAt = nil
            }
        }
        if let from = openedAt, let last = answers.last {
            windows.append(Window(from: from, to: last.answered, open: true))
        }
        self.init(probe: probe, probes: answers.count, failed: answers.filter { !$0.ok }.count, windows: windows)
    }

    public var failedSeconds: Double { windows.map(\.seconds).reduce(0, +) }
    public var longest: Window? { windows.max { $0.seconds < $1.seconds } }

    /// The summary's line.
    public var line: String {
        let asked = "\(probes) answer\(probes == 1 ? "" : "s") from \(probe)"
        guard let longest else {
            return probes == 0 ? "Writes: the probe never answered (\(probe))" : "Writes: never failed (\(asked))"
        }
        let time = Self.clockTime(longest.from)
        let windowsText = windows.count == 1 ? "once" : "\(windows.count) times"
        let still = windows.last?.open == true ? "; still failing when the run ended" : ""
        return
            "Writes: failed \(windowsText), \(Self.seconds(failedSeconds)) in all, longest \(Self.seconds(longest.seconds)) from \(time) UTC (\(asked)\(still))"
    }

    static func seconds(_ value: Double) -> String { String(format: "%.1f s", value) }

    /// `HH:mm:ss` in UTC.
    static func clockTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: date)
    }
}
