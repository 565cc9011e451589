import DroverSSH
import Foundation

/// Hands out loopback addresses (127.0.x.y) not used by anything else in this process, and checks that
/// nothing else on the machine listens there.
public enum LoopbackAddresses {
    private static let counter = Locked<Int>(Int(getpid() % 200) * 256)

    /// The next free loopback address on which `port` can be bound.
    public static func next(port: Int) -> String {
        while true {
            let value = counter.withLock { value -> Int in
                value += 1
                return value
            }
            let third = 2 + (value / 254) % 250
            let fourth = 1 + value % 254
            let address = "127.0.\(third).\(fourth)"
            if canBind(address: address, port: port) { return address }
        }
    }

    /// True when a TCP listener could bind `address:port` now.
    public static func canBind(address: String, port: Int) -> Bool {
        guard let fd = try? bind(address: address, port: port) else { return false }
        close(fd)
        return true
    }

    /// A TCP socket bound to `address:port` (IPv4), not yet listening.
    public static func bind(address: String, port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError.commandFailed("socket", String(cString: strerror(errno))) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, address, &socketAddress.sin_addr)
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw FixtureError.commandFailed("bind \(address):\(port)", reason)
        }
        return fd
    }

    /// A TCP listener on `address:port`.
    public static func listen(address: String, port: Int) throws -> Int32 {
        let fd = try bind(address: address, port: port)
        guard Glibc.listen(fd, 16) == 0 else {
            close(fd)
            throw FixtureError.commandFailed("listen", String(cString: strerror(errno)))
        }
        return fd
    }
}
