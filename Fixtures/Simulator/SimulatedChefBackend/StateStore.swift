import Foundation

/// A simulated system's state that moves on by itself as time passes (elections, failovers, resyncs).
public protocol SimulatedState: Codable {
    mutating func advance(to now: Date)
}

/// The chef-backend cluster's state file.
public typealias StateStore = StateFile<SimulatedCluster>
/// The DRBD pair's state file.
public typealias PairStateStore = StateFile<SimulatedPair>

/// The state file shared by all simulated nodes, read and written under an exclusive `flock`.
public struct StateFile<State: SimulatedState>: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// Runs `body` on the state, advanced to now, with the lock held; saves what it leaves.
    @discardableResult
    public func update<T>(_ body: (inout State, Date) throws -> T) throws -> T {
        let lock = open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw SimulatorError.state("cannot open \(path).lock") }
        defer { close(lock) }
        flock(lock, LOCK_EX)
        defer { flock(lock, LOCK_UN) }
        var cluster = try load()
        let now = Date()
        cluster.advance(to: now)
        let result = try body(&cluster, now)
        try save(cluster)
        return result
    }

    /// Reads the state without advancing it.
    public func load() throws -> State {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SimulatorError.state("no cluster state at \(path)")
        }
        return try decoder.decode(State.self, from: data)
    }

    /// Writes the state atomically (temporary file, rename).
    public func save(_ cluster: State) throws {
        let data = try encoder.encode(cluster)
        let temporary = path + ".tmp.\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            throw SimulatorError.state("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw SimulatorError.state("cannot replace \(path)") }
    }

    private var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601WithFractions
        return encoder
    }

    private var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601WithFractions
        return decoder
    }
}

extension JSONEncoder.DateEncodingStrategy {
    static let iso8601WithFractions = JSONEncoder.DateEncodingStrategy.custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(date.timeIntervalSince1970)
    }
}

extension JSONDecoder.DateDecodingStrategy {
    static let iso8601WithFractions = JSONDecoder.DateDecodingStrategy.custom { decoder in
        Date(timeIntervalSince1970: try decoder.singleValueContainer().decode(Double.self))
    }
}

/// Errors of the simulator itself (not of the simulated product).
public enum SimulatorError: LocalizedError {
    case state(String)

    public var errorDescription: String? {
        switch self {
        case .state(let message): return "chef-backend simulator: \(message)"
        }
    }
}
extension SimulatedCluster: SimulatedState {}
