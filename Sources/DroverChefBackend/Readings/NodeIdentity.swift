import DroverCluster
import DroverReporting
import Foundation

/// `publish_address` of `/etc/chef-backend/chef-backend.rb`: the address a node gives the cluster, written by
/// `join-cluster` and by Chef's install guide (`publish_address '10.0.0.1'` or `publish_address = '10.0.0.1'`).
public enum PublishAddress {
    public static let configPath = "/etc/chef-backend/chef-backend.rb"

    /// The address of the last `publish_address` line, nil without one (a comment or another key is not one).
    public static func parse(_ text: String) -> String? {
        var found: String?
        for line in text.split(separator: "\n").suffix(10_000) {
            var rest = line.drop { $0 == " " || $0 == "\t" }
            guard rest.hasPrefix("publish_address") else { continue }
            rest = rest.dropFirst("publish_address".count).drop { $0 == " " || $0 == "\t" || $0 == "=" }
            guard let quote = rest.first, quote == "'" || quote == "\"" else { continue }
            let value = rest.dropFirst().prefix { $0 != quote }
            // Closed by its quote on the same line, or it is no value.
            guard rest.dropFirst(value.count + 1).first == quote else { continue }
            if !value.isEmpty, value.count <= 255, value.allSatisfy({ $0.isASCII && !$0.isWhitespace }) {
                found = String(value)
            }
        }
        return found
    }
}

/// IP addresses compared as addresses, not as text: `fd00:0::1` is `fd00::1`, `::ffff:10.0.0.1` is `10.0.0.1`.
public enum IPAddress {
    /// The address in one textual form; nil for anything that is not an IPv4 or IPv6 literal (a host name, a
    /// Ruby expression in chef-backend.rb), which is then not compared at all.
    public static func normalized(_ text: String) -> String? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.count <= 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return format(family: AF_INET, &v4, length: INET_ADDRSTRLEN) }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        return format(family: AF_INET6, &v6, length: INET6_ADDRSTRLEN)
    }

    private static func format<T>(family: Int32, _ address: inout T, length: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(length))
        guard inet_ntop(family, &address, &buffer, socklen_t(length)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension ClusterObservation {
    /// The member `cluster-status` lists under an inventory backend's own name, when it lists one.
    public func member(named name: String) -> ClusterMember? { members.first { $0.name == name } }

    /// The inventory backends whose `host:` leads somewhere other than the member the cluster knows by that name:
    /// - reached, the machine's own `publish_address` is another member's address than the one the cluster lists
    ///   under the backend's name (or is the address of another inventory backend's member);
    /// - not reached, the cluster lists a member of that name, leader or follower, at another address than the
    ///   inventory's (both IP literals: a host name is not compared).
    ///
    /// Only names the cluster lists are compared: an inventory whose names are not the cluster's (matched by IP)
    /// is judged by the membership check instead.
    public var identityMismatches: [IdentityMismatch] {
        guard !members.isEmpty else { return [] }
        let inventoryNames = Set(nodes.map(\.name))
        var result: [IdentityMismatch] = []
        for node in nodes {
            let named = member(named: node.name)
            let namedAddress = named.flatMap { IPAddress.normalized($0.ip) }
            if node.unreachable == nil, let published = node.publishAddress.flatMap(IPAddress.normalized) {
                let there = members.first { IPAddress.normalized($0.ip) == published }
                if let named, let namedAddress, namedAddress != published {
                    let whose = there.map { " (the cluster's \($0.name))" } ?? ""
                    result.append(
                        IdentityMismatch(
                            node: node.name, inventoryHost: node.host,
                            detail:
                                "\(node.name): the inventory says \(node.host), which reaches a machine that publishes \(published)\(whose), but the cluster knows \(node.name) at \(named.ip)"
                        ))
                } else if named == nil, let there, there.name != node.name, inventoryNames.contains(there.name) {
                    result.append(
                        IdentityMismatch(
                            node: node.name, inventoryHost: node.host,
                            detail:
                                "\(node.name): the inventory says \(node.host), which reaches the cluster's \(there.name) (\(published))"
                        ))
                }
            } else if node.unreachable != nil, let named, named.role == "leader" || named.role == "follower",
                let namedAddress, let host = IPAddress.normalized(node.host), host != namedAddress
            {
                // Compared only where the inventory gives an address: a host name (or NAT) says nothing here.
                result.append(
                    IdentityMismatch(
                        node: node.name, inventoryHost: node.host,
                        detail:
                            "\(node.name): the inventory says \(node.host), the cluster knows \(node.name) at \(named.ip) and sees it \(Self.seen(named.role))"
                    ))
            }
        }
        return result
    }

    /// True when the cluster's members list the backend as taking part (leader or follower): it is up, whatever
    /// Drover could or could not reach.
    public func listedUp(_ name: String) -> Bool {
        members.contains { inventoryName(of: $0) == name && ($0.role == "leader" || $0.role == "follower") }
    }

    /// `healthy (follower)` for the roles of a working member, the role itself otherwise.
    static func seen(_ role: String) -> String {
        role == "leader" || role == "follower" ? "healthy (\(role))" : role
    }
}
