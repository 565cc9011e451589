import CCrypto
import Foundation

/// SHA-256 and HMAC-SHA1 through OpenSSL's libcrypto (which libssh2 already links).
public enum Digest {
    /// The SHA-256 of `data`, as lower-case hex.
    public static func sha256Hex(_ data: some DataProtocol) -> String {
        hex(sha256(Array(data)))
    }

    /// The SHA-256 of a file, read in chunks.
    public static func sha256Hex(ofFile path: String) throws -> String {
        var hasher = SHA256Hasher()
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw SSHError.localFileUnreadable(path: path, reason: "no such file or not readable")
        }
        defer { try? handle.close() }
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(chunk)
        }
        return hex(hasher.finish())
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = SHA256Hasher()
        hasher.update(bytes)
        return hasher.finish()
    }

    static func hmacSHA1(key: [UInt8], data: [UInt8]) -> [UInt8] {
        precondition(openSSLInitialised, "OpenSSL could not be initialised")
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { keyBuffer in
            data.withUnsafeBytes { dataBuffer in
                HMAC(
                    EVP_sha1(), keyBuffer.baseAddress, Int32(key.count),
                    dataBuffer.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
                    &output, &length)
            }
        }
        return Array(output.prefix(Int(length)))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}

/// Incremental SHA-256 over libcrypto's EVP interface.
struct SHA256Hasher: ~Copyable {
    private let context: OpaquePointer

    init() {
        precondition(openSSLInitialised, "OpenSSL could not be initialised")
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    mutating func update(_ bytes: some DataProtocol) {
        for region in bytes.regions {
            region.withUnsafeBytes { buffer in
                _ = EVP_DigestUpdate(context, buffer.baseAddress, buffer.count)
            }
        }
    }

    consuming func finish() -> [UInt8] {
        var output = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &output, &length)
        return output
    }

    deinit { EVP_MD_CTX_free(context) }
}
