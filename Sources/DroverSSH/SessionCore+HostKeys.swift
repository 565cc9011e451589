import CLibSSH2
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

// Host keys: the preferred key types, and verification against known_hosts.
extension SessionCore {
    /// libssh2 1.10 offers ECDSA before ed25519; ask for the types already recorded for this host first,
    /// so a host known only by its ed25519 key is not reported as unknown.
    func preferKnownHostKeyTypes(_ knownHosts: KnownHosts) {
        let supported = [
            "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
            "ssh-rsa", "ssh-dss",
        ]
        let known = knownHosts.keyTypes(host: host, port: port).filter(supported.contains)
        let preference = (known + supported.filter { !known.contains($0) }).joined(separator: ",")
        libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, preference)
    }

    func verifyHostKey(_ knownHosts: KnownHosts) throws {
        var length = 0
        var type: Int32 = 0
        guard let pointer = libssh2_session_hostkey(session, &length, &type) else {
            throw SSHError.handshakeFailed(host: host, port: port, reason: "the server sent no host key")
        }
        let blob = Array(UnsafeRawBufferPointer(start: pointer, count: length).bindMemory(to: UInt8.self))
        let keyType = KnownHosts.keyType(ofBlob: blob) ?? "unknown"
        let fingerprint = KnownHosts.fingerprint(ofBlob: blob)
        let metadata: Logger.Metadata = ["ssh.host": "\(endpoint)", "ssh.host_key": "\(keyType) \(fingerprint)"]
        if options.hostKeyPolicy == .off {
            logger.warning(
                "host key checking is off: \(endpoint) presents \(keyType) \(fingerprint), not verified",
                metadata: metadata)
            return
        }
        switch knownHosts.verify(host: host, port: port, keyBlob: blob) {
        case .match:
            return
        case .revoked(let line):
            throw SSHError.hostKeyRevoked(
                host: host, port: port, fingerprint: fingerprint, knownHostsFile: knownHosts.path, line: line)
        case .changed(let line):
            throw SSHError.hostKeyChanged(
                host: host, port: port, keyType: keyType, fingerprint: fingerprint,
                knownHostsFile: knownHosts.path, line: line)
        case .unknown:
            let line = KnownHosts.line(host: host, port: port, keyBlob: blob)
            guard options.hostKeyPolicy == .acceptNew else {
                throw SSHError.hostKeyUnknown(
                    host: host, port: port, keyType: keyType, fingerprint: fingerprint,
                    knownHostsFile: knownHosts.path, lineToAdd: line)
            }
            try KnownHosts.append(line, to: knownHosts.path)
            // Said on the console (a warning), not only in the log: trusting a key on first use is a choice the
            // operator should see.
            logger.warning(
                "host_key_checking accept-new: recorded the new host key of \(endpoint) (\(keyType) \(fingerprint)) in \(knownHosts.path)",
                metadata: metadata)
        }
    }
}
