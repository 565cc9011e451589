import Foundation

/// A tiny HTTP server on a loopback address that answers every request with one fixed response,
/// standing in for a Chef Infra Server frontend's `/_status`.
public final class HTTPStub: @unchecked Sendable {
    public let address: String
    public let port: Int
    private let fd: Int32

    /// Starts answering `status` with `body` until ``stop()``.
    public init(status: Int, body: String) throws {
        port = 8080
        address = LoopbackAddresses.next(port: port)
        fd = try LoopbackAddresses.listen(address: address, port: port)
        let reason = status == 200 ? "OK" : "Internal Server Error"
        let response =
            "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let listener = fd
        Thread.detachNewThread {
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                _ = recv(client, &buffer, buffer.count, 0)
                _ = response.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                close(client)
            }
        }
    }

    public var url: String { "http://\(address):\(port)/_status" }

    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
