import Foundation
import SimulatedChefBackend

/// `chef-backend-sim status-server NODE ADDRESS PORT`: a frontend's `/_status` over HTTP, as a load balancer or
/// a workstation reaches it (through nginx): one connection at a time, each answered from the cluster's state
/// (DROVER_SIM_STATE) at that moment. While the frontend's services are stopped, a connection is closed unanswered.
func statusServer(_ arguments: [String]) -> Int32 {
    guard arguments.count == 3, let port = UInt16(arguments[2]),
        let state = ProcessInfo.processInfo.environment["DROVER_SIM_STATE"]
    else {
        write(2, "usage: chef-backend-sim status-server NODE ADDRESS PORT (DROVER_SIM_STATE set)\n")
        return 64
    }
    let node = arguments[0]
    signal(SIGPIPE, SIG_IGN)
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    guard inet_pton(AF_INET, arguments[1], &address.sin_addr) == 1 else {
        write(2, "status-server: \(arguments[1]) is not an IPv4 address\n")
        return 64
    }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0, listen(listener, 16) == 0 else {
        write(2, "status-server: cannot listen on \(arguments[1]):\(port): \(String(cString: strerror(errno)))\n")
        return 71
    }
    let store = StateStore(path: state)
    while true {
        let client = accept(listener, nil, nil)
        guard client >= 0 else { continue }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // The request head, up to its blank line.
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 16_384 {
            let count = read(client, &buffer, buffer.count)
            if count <= 0 { break }
            request += buffer[0..<count]
            if String(decoding: request, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let line = String(decoding: request, as: UTF8.self).split(separator: "\r\n").first ?? ""
        let answer: (code: Int, body: String)?
        if line.hasPrefix("GET /_status ") || line.hasPrefix("HEAD /_status ") {
            answer = try? store.update { cluster, _ in
                cluster.frontends.first { $0.name == node }.flatMap {
                    FrontendInvocation.httpStatus(of: $0, in: cluster)
                }
            }
        } else {
            answer = (404, #"{"error":"not found"}"#)
        }
        if let answer {
            let reason = [200: "OK", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"]
            let body = Array(answer.body.utf8)
            let head =
                "HTTP/1.1 \(answer.code) \(reason[answer.code] ?? "Status")\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            answerClient(client, Array((head + answer.body).utf8))
        }
        close(client)
    }
}

/// Writes the answer; a client gone early costs only its answer (unlike `write`, which dies as a tool does).
private func answerClient(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
        if written <= 0 { return }
        offset += written
    }
}
