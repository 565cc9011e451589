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
            guard var file = OpenSSHKeyFile(contents: contents) else { return nil }
            file.wipe()
            encrypted = file.encrypted
            keyType = KnownHosts.keyType(ofBlob: file.publicBlob)
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

/// The parts of an OpenSSH-format private key file (`openssh-key-v1`): its cipher, its first public key and its
/// private section (encrypted unless the cipher is `none`; empty when the file has none).
struct OpenSSHKeyFile {
    var cipher: [UInt8]
    var publicBlob: [UInt8]
    var privateSection: [UInt8]

    var encrypted: Bool { cipher != Array("none".utf8) }

    /// Decodes the file's base64 body; nil when it is not such a file. The decoded copy is wiped once read.
    init?(contents: String) {
        let body = contents.components(separatedBy: .newlines).filter { !$0.hasPrefix("-----") }.joined()
        guard var data = Data(base64Encoded: body, options: .ignoreUnknownCharacters) else { return nil }
        var bytes = [UInt8](data)
        data.resetBytes(in: 0..<data.count)
        defer { DroverSSH.wipe(&bytes) }
        var reader = WireReader(bytes)
        let magic = Array("openssh-key-v1\0".utf8)
        guard reader.readBytes(magic.count) == magic, let cipher = reader.readString(), reader.readString() != nil,
            reader.readString() != nil, let count = reader.readUInt32(), count >= 1,
            let publicBlob = reader.readString()
        else { return nil }
        for _ in 1..<count { guard reader.readString() != nil else { return nil } }
        self.cipher = cipher
        self.publicBlob = publicBlob
        privateSection = reader.readString() ?? []
    }

    /// Overwrites the private section.
    mutating func wipe() { DroverSSH.wipe(&privateSection) }
}
