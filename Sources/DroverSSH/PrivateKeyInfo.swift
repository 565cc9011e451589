import Foundation

/// What can be told about a private key file without decrypting it: its type and whether it is encrypted.
struct PrivateKeyInfo: Equatable {
    /// The SSH algorithm name (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`), when the file says.
    var keyType: String?
    var encrypted: Bool

    var isRSA: Bool { keyType == "ssh-rsa" }

    /// Inspects an OpenSSH-format or PEM private key file; nil when the file is not a recognised key.
    init?(contents: String) {
        if contents.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            let body = contents.components(separatedBy: .newlines).filter { !$0.hasPrefix("-----") }.joined()
            guard let data = Data(base64Encoded: body, options: .ignoreUnknownCharacters) else { return nil }
            var reader = WireReader(Array(data))
            let magic = Array("openssh-key-v1\0".utf8)
            guard reader.readBytes(magic.count) == magic,
                let cipher = reader.readString(), reader.readString() != nil, reader.readString() != nil,
                let count = reader.readUInt32(), count >= 1, let publicBlob = reader.readString()
            else { return nil }
            encrypted = String(decoding: cipher, as: UTF8.self) != "none"
            keyType = KnownHosts.keyType(ofBlob: publicBlob)
        } else if contents.contains("-----BEGIN RSA PRIVATE KEY-----") {
            keyType = "ssh-rsa"
            encrypted = contents.contains("ENCRYPTED")
        } else if contents.contains("-----BEGIN EC PRIVATE KEY-----") {
            keyType = "ecdsa"
            encrypted = contents.contains("ENCRYPTED")
        } else if contents.contains("-----BEGIN DSA PRIVATE KEY-----") {
            keyType = "ssh-dss"
            encrypted = contents.contains("ENCRYPTED")
        } else if contents.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            keyType = nil
            encrypted = true
        } else if contents.contains("-----BEGIN PRIVATE KEY-----") {
            keyType = nil
            encrypted = false
        } else {
            return nil
        }
    }
}
