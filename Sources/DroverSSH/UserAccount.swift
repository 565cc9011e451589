import Foundation

/// The user running Drover, read the way OpenSSH and XDG tools read it.
public enum UserAccount {
    /// The home directory: `$HOME` when it is set and not empty, else the passwd entry's.
    ///
    /// CI runners, containers and `sudo -E` set `HOME` to something other than the passwd entry, and
    /// `~` in an inventory, the state directory and known_hosts must all follow it.
    public static var home: String {
        if let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty { return home }
        return passwdEntry()?.home ?? "/"
    }

    /// The login name: the passwd entry's, else `$USER`, else `root`.
    public static var name: String {
        passwdEntry()?.name ?? ProcessInfo.processInfo.environment["USER"] ?? "root"
    }

    /// `~` or a leading `~/` replaced by ``home``; other paths unchanged.
    public static func expandingTilde(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        return home + path.dropFirst()
    }

    /// The effective user's passwd entry, read with the reentrant `getpwuid_r`.
    private static func passwdEntry() -> (name: String, home: String)? {
        var buffer = [CChar](repeating: 0, count: 16_384)
        // The entry's strings point into `buffer`: copy them before it goes out of scope.
        return buffer.withUnsafeMutableBufferPointer { storage -> (name: String, home: String)? in
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            guard let base = storage.baseAddress, getpwuid_r(geteuid(), &entry, base, storage.count, &result) == 0,
                result != nil,
                let name = entry.pw_name, let home = entry.pw_dir
            else { return nil }
            return (String(cString: name), String(cString: home))
        }
    }
}
