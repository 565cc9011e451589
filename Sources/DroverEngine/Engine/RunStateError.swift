import DroverCluster
import DroverReporting
import DroverSSH
import Foundation
import Synchronization

public enum RunStateError: LocalizedError {
    case unwritable(String, String)

    public var errorDescription: String? {
        switch self {
        case .unwritable(let path, let reason): return "cannot write \(path): \(reason); choose another --state-dir"
        }
    }
}
