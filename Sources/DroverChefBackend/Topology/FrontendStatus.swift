import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Checks a Chef Infra Server frontend's `/_status`: HTTP 200 and `"status":"pong"`.
public enum FrontendStatus {
    public struct Result: Sendable {
        public var ok: Bool
        public var detail: String
    }

    public static func check(_ url: String, timeout: TimeInterval = 10) async -> Result {
        guard let address = URL(string: url) else { return Result(ok: false, detail: "not a URL") }
        var request = URLRequest(url: address)
        request.timeoutInterval = timeout
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            let code = (response as? HTTPURLResponse)?.statusCode ?? 0
            let body = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            let status = body?["status"] as? String
            if code == 200 && status == "pong" { return Result(ok: true, detail: "HTTP 200, status pong") }
            let failing =
                (body?["upstreams"] as? [String: Any])?.filter { ($0.value as? String) != "pong" }.map(\.key).sorted()
                ?? []
            return Result(
                ok: false,
                detail:
                    "HTTP \(code), status \(status ?? "unreadable")\(failing.isEmpty ? "" : "; failing upstreams: \(failing.joined(separator: ", "))")"
            )
        } catch {
            return Result(ok: false, detail: error.localizedDescription)
        }
    }
}
