import Foundation

/// How much longer than usual tests may take here.
///
/// `.ci/sanitize` sets `DROVER_TEST_TIME_FACTOR=2`: under ThreadSanitizer on a busy 2-core machine a test
/// takes several times as long, and the suites' time limits exist to catch hangs, not slowness.
public enum TestTime {
    /// The multiplier for time limits and waits (1 unless `DROVER_TEST_TIME_FACTOR` says otherwise).
    public static let factor: Int = {
        guard let text = ProcessInfo.processInfo.environment["DROVER_TEST_TIME_FACTOR"], let value = Int(text),
            value >= 1
        else { return 1 }
        return value
    }()
}
