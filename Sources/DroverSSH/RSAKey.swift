import CCrypto
import Foundation

/// An RSA private key loaded with libcrypto, which signs with SHA-2 (`rsa-sha2-512`, `rsa-sha2-256`): what
/// libssh2 1.10 cannot do with a key file itself (it signs RSA only as `ssh-rsa`, with SHA-1).
final class RSAKey {
    /// The SHA-2 signature algorithms, the stronger first (as OpenSSH's client offers them).
    static let algorithms = ["rsa-sha2-512", "rsa-sha2-256"]

    /// Why a key file's RSA key could not be loaded.
    enum LoadFailure: Error, Equatable {
        /// Not an RSA key (a PKCS#8 file of another type).
        case notRSA
        /// An encrypted OpenSSH-format file: its KDF (bcrypt-pbkdf) is not one libcrypto has.
        case encryptedOpenSSHFormat
        /// Unreadable: a wrong passphrase, or a damaged file.
        case unreadable
    }

    private let key: OpaquePointer
    /// The public key's `mpint e`, `mpint n`, as SSH writes them after the algorithm name.
    let publicParts: [UInt8]

    private init(key: OpaquePointer) throws(LoadFailure) {
        guard drover_private_key_is_rsa(key) == 1 else {
            EVP_PKEY_free(key)
            throw .notRSA
        }
        func parameter(_ name: String) -> [UInt8]? {
            var bytes: UnsafeMutablePointer<UInt8>?
            let length = drover_rsa_public_parameter(key, name, &bytes)
            defer { free(bytes) }
            guard length >= 0, let bytes else { return nil }
            return Array(UnsafeBufferPointer(start: bytes, count: Int(length)))
        }
        guard let e = parameter("e"), let n = parameter("n") else {
            EVP_PKEY_free(key)
            throw .unreadable
        }
        self.key = key
        publicParts = Wire.mpint(e) + Wire.mpint(n)
    }

    deinit { EVP_PKEY_free(key) }

    /// Loads the RSA key of a key file: PEM (`BEGIN RSA PRIVATE KEY`, `BEGIN PRIVATE KEY`, encrypted or not)
    /// or OpenSSH format (`BEGIN OPENSSH PRIVATE KEY`, unencrypted).
    static func load(contents: String, passphrase: String?) throws(LoadFailure) -> RSAKey {
        if contents.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            return try loadOpenSSH(contents)
        }
        var bytes = Array(contents.utf8)
        defer { wipe(&bytes) }
        guard !bytes.isEmpty, bytes.count <= Int(Int32.max) else { throw .unreadable }
        let loaded = bytes.withUnsafeBufferPointer { text in
            text.baseAddress!.withMemoryRebound(to: CChar.self, capacity: text.count) { start in
                withOptionalCString(passphrase) { drover_private_key_from_pem(start, Int32(text.count), $0) }
            }
        }
        guard let loaded else { throw .unreadable }
        return try RSAKey(key: loaded)
    }

    /// An OpenSSH-format key file's first key: `openssh-key-v1`, its cipher (`none`), and the private section's
    /// `ssh-rsa` fields n, e, d, iqmp, p, q.
    private static func loadOpenSSH(_ contents: String) throws(LoadFailure) -> RSAKey {
        guard var file = OpenSSHKeyFile(contents: contents) else { throw .unreadable }
        // Best effort against copies of the private fields: the decoded buffers are wiped when done (the
        // file's text, as the caller read it, is not ours to wipe).
        defer { file.wipe() }
        guard !file.encrypted else { throw .encryptedOpenSSHFormat }
        guard !file.privateSection.isEmpty else { throw .unreadable }
        var section = WireReader(file.privateSection)
        guard let check1 = section.readUInt32(), section.readUInt32() == check1 else { throw .unreadable }
        guard section.readString() == Array("ssh-rsa".utf8) else { throw .notRSA }
        guard var n = section.readString(), var e = section.readString(), var d = section.readString(),
            var iqmp = section.readString(), var p = section.readString(), var q = section.readString()
        else { throw .unreadable }
        defer {
            wipe(&n)
            wipe(&e)
            wipe(&d)
            wipe(&iqmp)
            wipe(&p)
            wipe(&q)
        }
        let key = n.withUnsafeBufferPointer { n in
            e.withUnsafeBufferPointer { e in
                d.withUnsafeBufferPointer { d in
                    iqmp.withUnsafeBufferPointer { iqmp in
                        p.withUnsafeBufferPointer { p in
                            q.withUnsafeBufferPointer { q in
                                drover_rsa_from_openssh(
                                    n.baseAddress, n.count, e.baseAddress, e.count, d.baseAddress, d.count,
                                    iqmp.baseAddress, iqmp.count, p.baseAddress, p.count, q.baseAddress, q.count)
                            }
                        }
                    }
                }
            }
        }
        guard let key else { throw .unreadable }
        return try RSAKey(key: key)
    }

    /// The public key blob libssh2 sends for `algorithm`: its name, then `e` and `n` (the server reads it as
    /// the user's RSA key, and libssh2 names the signature with it).
    func publicBlob(algorithm: String) -> [UInt8] { Wire.string(Array(algorithm.utf8)) + publicParts }

    /// The raw signature of `data` for `algorithm` (libssh2 adds the name), in memory from malloc for libssh2
    /// to free; nil when libcrypto cannot sign.
    func sign(_ data: UnsafeBufferPointer<UInt8>, algorithm: String) -> (UnsafeMutablePointer<UInt8>, Int)? {
        precondition(Self.algorithms.contains(algorithm), "not an RSA SHA-2 algorithm: \(algorithm)")
        var signature: UnsafeMutablePointer<UInt8>?
        var length = 0
        let bits: Int32 = algorithm == "rsa-sha2-512" ? 512 : 256
        guard drover_rsa_sign(key, bits, data.baseAddress, data.count, &signature, &length) == 0, let signature
        else { return nil }
        return (signature, length)
    }
}

/// Overwrites a buffer that held key material with zeros (libcrypto's `OPENSSL_cleanse`, which the optimiser
/// cannot drop).
func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
    }
}

/// SSH wire encodings (RFC 4251): `string` and `mpint`.
enum Wire {
    static func uint32(_ value: Int) -> [UInt8] {
        [
            UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
            UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value),
        ]
    }

    static func string(_ bytes: [UInt8]) -> [UInt8] { uint32(bytes.count) + bytes }

    /// A non-negative big-endian number: leading zeros dropped, one zero byte first when its top bit is set.
    static func mpint(_ bytes: [UInt8]) -> [UInt8] {
        var digits = Array(bytes.drop { $0 == 0 })
        if let first = digits.first, first & 0x80 != 0 { digits.insert(0, at: 0) }
        return string(digits)
    }
}
