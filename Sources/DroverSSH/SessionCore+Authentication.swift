import CLibSSH2
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

// Authentication: the agent, then key files, with the reasons each attempt failed.
extension SessionCore {
    func authenticate() throws {
        let user = options.user
        var attempts: [AuthenticationAttempt] = []
        let offered: String? = user.withCString { name in
            libssh2_userauth_list(session, name, UInt32(user.utf8.count)).map { String(cString: $0) }
        }
        if libssh2_userauth_authenticated(session) != 0 { return }
        let methods = offered?.split(separator: ",").map(String.init) ?? []
        guard methods.contains("publickey") else {
            attempts.append(
                AuthenticationAttempt(
                    method: "publickey",
                    reason:
                        "the server does not offer it (offers: \(methods.isEmpty ? "nothing" : methods.joined(separator: ", ")))"
                ))
            throw SSHError.authenticationFailed(host: host, port: port, user: user, attempts: attempts)
        }
        if let socketPath = options.agentSocket, !socketPath.isEmpty {
            if try authenticateWithAgent(socketPath: socketPath, attempts: &attempts) { return }
        }
        for file in options.identityFiles {
            if try authenticate(withKeyFile: file, attempts: &attempts) { return }
        }
        throw SSHError.authenticationFailed(host: host, port: port, user: user, attempts: attempts)
    }

    func authenticateWithAgent(socketPath: String, attempts: inout [AuthenticationAttempt]) throws -> Bool {
        let method = "ssh-agent (\(socketPath))"
        guard let agent = libssh2_agent_init(session) else {
            attempts.append(AuthenticationAttempt(method: method, reason: "libssh2 could not create an agent handle"))
            return false
        }
        defer {
            libssh2_agent_disconnect(agent)
            libssh2_agent_free(agent)
        }
        socketPath.withCString { libssh2_agent_set_identity_path(agent, $0) }
        guard libssh2_agent_connect(agent) == 0 else {
            attempts.append(
                AuthenticationAttempt(method: method, reason: "cannot connect to the agent; is SSH_AUTH_SOCK stale?"))
            return false
        }
        guard libssh2_agent_list_identities(agent) == 0 else {
            attempts.append(AuthenticationAttempt(method: method, reason: "cannot list the agent's keys"))
            return false
        }
        var previous: UnsafeMutablePointer<libssh2_agent_publickey>?
        var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
        var tried = 0
        while libssh2_agent_get_identity(agent, &identity, previous) == 0, let current = identity {
            previous = current
            tried += 1
            let blob = Array(UnsafeBufferPointer(start: current.pointee.blob, count: Int(current.pointee.blob_len)))
            let keyType = KnownHosts.keyType(ofBlob: blob) ?? "unknown"
            let comment = current.pointee.comment.map { String(cString: $0) } ?? ""
            let rc = options.user.withCString { libssh2_agent_userauth(agent, $0, current) }
            if rc == 0 { return true }
            attempts.append(
                AuthenticationAttempt(
                    method:
                        "ssh-agent key \(comment.isEmpty ? KnownHosts.fingerprint(ofBlob: blob) : comment) (\(keyType))",
                    reason: publicKeyFailure(rc, isRSA: keyType == "ssh-rsa")))
            if rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_TIMEOUT {
                throw SSHError.sessionFailed(host: host, port: port, reason: lastError(rc))
            }
        }
        if tried == 0 {
            attempts.append(
                AuthenticationAttempt(method: method, reason: "the agent holds no keys (ssh-add lists none)"))
        }
        return false
    }

    func authenticate(withKeyFile file: String, attempts: inout [AuthenticationAttempt]) throws -> Bool {
        let path = UserAccount.expandingTilde(file)
        let method = "identity file \(file)"
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file"
            attempts.append(AuthenticationAttempt(method: method, reason: reason))
            return false
        }
        let info = PrivateKeyInfo(contents: String(decoding: data, as: UTF8.self))
        guard let info else {
            attempts.append(AuthenticationAttempt(method: method, reason: "not a private key in OpenSSH or PEM format"))
            return false
        }
        var passphrase: String?
        if info.encrypted {
            passphrase = options.passphrase.resolve(path)
            guard passphrase != nil else {
                attempts.append(
                    AuthenticationAttempt(
                        method: method,
                        reason:
                            "the key is encrypted and no passphrase is available: set DROVER_SSH_PASSPHRASE, run on a terminal, or load the key into ssh-agent"
                    ))
                return false
            }
        }
        // libssh2 1.10 decrypts an encrypted key (bcrypt_pbkdf, CPU-bound and slow) inside this blocking
        // call, and its timeout counts from the call's start: on a busy machine that local work alone used
        // the time meant for the server. Allow for it, then restore the session timeout.
        if info.encrypted {
            libssh2_session_set_timeout(
                session, Int(options.sessionTimeout.milliseconds) + Self.keyDerivationAllowanceMilliseconds)
        }
        defer { if info.encrypted { libssh2_session_set_timeout(session, Int(options.sessionTimeout.milliseconds)) } }
        let rc = options.user.withCString { name in
            path.withCString { keyPath in
                withOptionalCString(passphrase) { secret in
                    drover_userauth_publickey_fromfile(session, name, UInt32(options.user.utf8.count), keyPath, secret)
                }
            }
        }
        if rc == 0 { return true }
        var reason = publicKeyFailure(rc, isRSA: info.isRSA)
        if rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED {
            reason =
                info.encrypted
                ? "wrong passphrase, or a key format libssh2 cannot read" : "libssh2 cannot read this key file"
        }
        attempts.append(AuthenticationAttempt(method: method, reason: reason))
        if rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_TIMEOUT {
            throw SSHError.sessionFailed(host: host, port: port, reason: lastError(rc))
        }
        return false
    }

    /// Extra time an authentication with an encrypted key file may take, for decrypting the key locally.
    static let keyDerivationAllowanceMilliseconds = 120_000

    func publicKeyFailure(_ rc: Int32, isRSA: Bool) -> String {
        if rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED {
            if isRSA {
                return
                    "the server refused this RSA key: libssh2 1.10 signs RSA only with SHA-1 (ssh-rsa), which OpenSSH 8.8 and later reject. Use an ed25519 key, or let the server accept it with PubkeyAcceptedAlgorithms +ssh-rsa"
            }
            return "the server refused this key (is its public key in the user's authorized_keys?)"
        }
        return lastError(rc)
    }
}
