import Foundation

/// An inventory backend that is not the machine the cluster knows by its name: a wrong `host:` (a typo, an
/// address reused), found by comparing the inventory with `cluster-status` and with the node's own
/// `publish_address`. Such a node is neither down nor healthy as far as Drover can tell; nothing may change
/// membership or data until the inventory is fixed.
public struct IdentityMismatch: Sendable, Equatable {
    /// The inventory's name of the backend.
    public var node: String
    /// The inventory's `host:` for it (after ssh_config's HostName).
    public var inventoryHost: String
    /// What does not agree, in one sentence that starts with the node's name.
    public var detail: String
}

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

extension ClusterObservation {
    /// The member `cluster-status` lists under an inventory backend's own name, when it lists one.
    public func member(named name: String) -> ClusterMember? { members.first { $0.name == name } }

    /// The inventory backends whose `host:` leads somewhere other than the member the cluster knows by that name:
    /// - reached, the machine's own `publish_address` is another member's address than the one the cluster lists
    ///   under the backend's name (or is the address of another inventory backend's member);
    /// - not reached, the cluster lists a member of that name at another address than the inventory's, up.
    ///
    /// Only names the cluster lists are compared: an inventory whose names are not the cluster's (matched by IP)
    /// is judged by the membership check instead.
    public var identityMismatches: [IdentityMismatch] {
        guard !members.isEmpty else { return [] }
        let inventoryNames = Set(nodes.map(\.name))
        var result: [IdentityMismatch] = []
        for node in nodes {
            let named = member(named: node.name)
            if node.unreachable == nil, let published = node.publishAddress {
                let there = members.first { $0.ip == published }
                if let named, named.ip != published {
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
            } else if node.unreachable != nil, let named, named.ip != node.host {
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
