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
        // RSA keys the server refused, by public key: the same key in the agent and a file is offered once
        // (each RSA offer may take three of the server's MaxAuthTries).
        var refusedRSA: Set<[UInt8]> = []
        if let socketPath = options.agentSocket, !socketPath.isEmpty {
            if try authenticateWithAgent(socketPath: socketPath, attempts: &attempts, refusedRSA: &refusedRSA) {
                return
            }
        }
        for file in options.identityFiles {
            if try authenticate(withKeyFile: file, attempts: &attempts, refusedRSA: &refusedRSA) { return }
        }
        throw SSHError.authenticationFailed(host: host, port: port, user: user, attempts: attempts)
    }

    func authenticateWithAgent(
        socketPath: String, attempts: inout [AuthenticationAttempt], refusedRSA: inout Set<[UInt8]>
    ) throws -> Bool {
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
            // An RSA key signs with SHA-2 through the agent itself first; then (any key) libssh2's own request.
            var agentRefusedSHA2 = false
            if keyType == "ssh-rsa", let parts = Self.publicParts(ofBlob: blob) {
                let signer = AgentSigner(socketPath: socketPath, keyBlob: blob)
                let rsa = try authenticateRSA(parts: parts, extraTime: signer.timeout) {
                    signer.sign($0, algorithm: $1)
                }
                if rsa.rc == 0 { return true }
                agentRefusedSHA2 = rsa.signingFailed
                refusedRSA.insert(parts)
            }
            let rc = options.user.withCString { libssh2_agent_userauth(agent, $0, current) }
            if rc == 0 { return true }
            var reason = publicKeyFailure(rc, isRSA: keyType == "ssh-rsa")
            if agentRefusedSHA2 {
                reason +=
                    "; the agent would not sign with rsa-sha2-512 or rsa-sha2-256 (an agent older than OpenSSH 7.2?)"
            }
            attempts.append(
                AuthenticationAttempt(
                    method:
                        "ssh-agent key \(comment.isEmpty ? KnownHosts.fingerprint(ofBlob: blob) : comment) (\(keyType))",
                    reason: reason))
            if connectionLost(rc) { throw SSHError.sessionFailed(host: host, port: port, reason: lastError(rc)) }
        }
        if tried == 0 {
            attempts.append(
                AuthenticationAttempt(method: method, reason: "the agent holds no keys (ssh-add lists none)"))
        }
        return false
    }

    func authenticate(
        withKeyFile file: String, attempts: inout [AuthenticationAttempt], refusedRSA: inout Set<[UInt8]>
    ) throws -> Bool {
        let path = UserAccount.expandingTilde(file)
        let method = "identity file \(file)"
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= Self.largestKeyFile else {
            attempts.append(
                AuthenticationAttempt(method: method, reason: "\(size) bytes: not a private key (those are a few KB)"))
            return false
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file"
            attempts.append(AuthenticationAttempt(method: method, reason: reason))
            return false
        }
        let text = String(decoding: data, as: UTF8.self)
        let info = PrivateKeyInfo(contents: text)
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
        // An RSA key (or a PKCS#8 file, which may hold one) signs with SHA-2 through libcrypto first; libssh2's
        // own request below signs RSA only as ssh-rsa (SHA-1), for servers that know nothing else.
        var rsaKey: RSAKey?
        var encryptedOpenSSHFormat = false
        if info.isRSA || info.keyType == nil {
            do {
                rsaKey = try RSAKey.load(contents: text, passphrase: passphrase)
            } catch .encryptedOpenSSHFormat {
                encryptedOpenSSHFormat = true
            } catch {
                // Not RSA, or not readable here: libssh2's request below says what it can.
            }
        }
        if let key = rsaKey {
            guard !refusedRSA.contains(key.publicParts) else {
                attempts.append(
                    AuthenticationAttempt(
                        method: method, reason: "the same RSA key as ssh-agent's, which the server refused (above)"))
                return false
            }
            if try authenticateRSA(parts: key.publicParts, sign: { key.sign($0, algorithm: $1) }).rc == 0 {
                return true
            }
            refusedRSA.insert(key.publicParts)
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
        var reason = publicKeyFailure(rc, isRSA: rsaKey != nil)
        if rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED {
            reason =
                info.encrypted
                ? "wrong passphrase, or a key format libssh2 cannot read" : "libssh2 cannot read this key file"
            if rsaKey != nil {
                reason = "the server refused this RSA key with rsa-sha2-512 and rsa-sha2-256, and " + reason
            }
        } else if encryptedOpenSSHFormat && rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED {
            reason =
                "the server refused this RSA key as ssh-rsa (SHA-1), the only signature Drover can make with an encrypted OpenSSH-format key: libcrypto lacks its encryption's KDF (bcrypt-pbkdf). Load it into ssh-agent (ssh-add \(file)), or re-encrypt it as PEM (ssh-keygen -p -m PEM -f \(file))"
        }
        attempts.append(AuthenticationAttempt(method: method, reason: reason))
        if connectionLost(rc) { throw SSHError.sessionFailed(host: host, port: port, reason: lastError(rc)) }
        return false
    }

    /// Extra time an authentication with an encrypted key file may take, for decrypting the key locally.
    static let keyDerivationAllowanceMilliseconds = 120_000

    /// The largest key file read: private keys are a few KB.
    static let largestKeyFile = 1 << 20

    /// True when an authentication call failed because the session is gone: libssh2 1.10 reports a failure
    /// while waiting for the server's answer (its disconnect after too many attempts, a timeout) as
    /// `PUBLICKEY_UNVERIFIED` with a "Waiting for ..." message.
    func connectionLost(_ rc: Int32) -> Bool {
        switch rc {
        case LIBSSH2_ERROR_SOCKET_DISCONNECT, LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_SOCKET_SEND,
            LIBSSH2_ERROR_SOCKET_RECV:
            return true
        case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
            var message: UnsafeMutablePointer<CChar>?
            var length: Int32 = 0
            libssh2_session_last_error(session, &message, &length, 0)
            return message.map { String(cString: $0).hasPrefix("Waiting for") } ?? false
        default:
            return false
        }
    }

    /// Why a key was refused; `isRSA`: it was offered with rsa-sha2-512, rsa-sha2-256 and ssh-rsa.
    func publicKeyFailure(_ rc: Int32, isRSA: Bool) -> String {
        if rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED {
            if isRSA {
                return
                    "the server refused this RSA key with rsa-sha2-512, rsa-sha2-256 and ssh-rsa (is its public key in the user's authorized_keys?)"
            }
            return "the server refused this key (is its public key in the user's authorized_keys?)"
        }
        return lastError(rc)
    }

    /// An RSA key offered with rsa-sha2-512, then rsa-sha2-256, each signed by `sign`; `rc` is 0 when one was
    /// accepted, else the last refusal; `signingFailed` when `sign` could not sign. `extraTime`: how long the
    /// signer may take beyond the session timeout (libssh2's counts from the call's start, signing included).
    /// Throws when the connection is lost.
    func authenticateRSA(
        parts: [UInt8], extraTime: Duration = .zero,
        sign: @escaping (UnsafeBufferPointer<UInt8>, String) -> (UnsafeMutablePointer<UInt8>, Int)?
    ) throws -> (rc: Int32, signingFailed: Bool) {
        if extraTime > .zero {
            libssh2_session_set_timeout(session, Int((options.sessionTimeout + extraTime).milliseconds))
        }
        defer {
            if extraTime > .zero { libssh2_session_set_timeout(session, Int(options.sessionTimeout.milliseconds)) }
        }
        var rc = LIBSSH2_ERROR_AUTHENTICATION_FAILED
        var signingFailed = false
        for algorithm in RSAKey.algorithms {
            let context = SigningContext { sign($0, algorithm) }
            rc = authenticate(blob: Wire.string(Array(algorithm.utf8)) + parts, signing: context)
            signingFailed = signingFailed || context.failed
            if rc == 0 { return (0, false) }
            if connectionLost(rc) { throw SSHError.sessionFailed(host: host, port: port, reason: lastError(rc)) }
        }
        return (rc, signingFailed)
    }

    /// `libssh2_userauth_publickey` with `blob` (its first string names the signature algorithm, which
    /// libssh2 puts in the request and around the signature) and `context` signing.
    func authenticate(blob: [UInt8], signing context: SigningContext) -> Int32 {
        var abstract: UnsafeMutableRawPointer? = Unmanaged.passUnretained(context).toOpaque()
        return withExtendedLifetime(context) {
            options.user.withCString { name in
                blob.withUnsafeBufferPointer { key in
                    libssh2_userauth_publickey(session, name, key.baseAddress, key.count, signWithContext, &abstract)
                }
            }
        }
    }

    /// An agent identity's blob without its algorithm name (`ssh-rsa`): `mpint e`, `mpint n`.
    static func publicParts(ofBlob blob: [UInt8]) -> [UInt8]? {
        var reader = WireReader(blob)
        guard let name = reader.readString() else { return nil }
        return Array(blob.dropFirst(4 + name.count))
    }
}

/// What signs for ``SessionCore/authenticate(blob:signing:)``: a raw signature in memory from malloc, which
/// libssh2 frees with its session's free function (`free`: the session is made with libssh2's default
/// allocators, `drover_session_init`).
final class SigningContext {
    let sign: (UnsafeBufferPointer<UInt8>) -> (UnsafeMutablePointer<UInt8>, Int)?
    /// True once `sign` could not sign.
    var failed = false

    init(sign: @escaping (UnsafeBufferPointer<UInt8>) -> (UnsafeMutablePointer<UInt8>, Int)?) { self.sign = sign }
}

/// libssh2's signing callback: `abstract` points at the ``SigningContext``.
private let signWithContext:
    @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, UnsafeMutablePointer<Int>?,
        UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> Int32 = { _, signature, length, data, dataLength, abstract in
        guard let signature, let length, let data, let pointer = abstract?.pointee else { return -1 }
        let context = Unmanaged<SigningContext>.fromOpaque(pointer).takeUnretainedValue()
        guard let (bytes, count) = context.sign(UnsafeBufferPointer(start: data, count: dataLength)) else {
            context.failed = true
            return -1
        }
        signature.pointee = bytes
        length.pointee = count
        return 0
    }
