import DroverChefBackend
import Testing

@testable import DroverCluster

/// What a frontend's upgrade reads: `chef-server-ctl status` (runit's lines) and `/_status`'s upstreams.
@Suite("frontend readings")
struct FrontendReadingsTests {
    @Test func servicesAreReadFromRunitLinesWhateverSurroundsThem() throws {
        let output = """
            \u{1B}[1mrun: bookshelf: (pid 1234) 3600s; run: log: (pid 1200) 86400s\u{1B}[0m
            down: nginx: 12s, normally up; run: log: (pid 1201) 86400s
            warning: opscode-erchef: unable to open supervise/ok: file does not exist
            run: haproxy: (pid 1250) 3600s, normally down; run: log: (pid 1202) 86400s
            some header the tool may print
            """
        let services = try FrontendServices.parse(output)
        #expect(services.map(\.name) == ["bookshelf", "nginx", "opscode-erchef", "haproxy"])
        #expect(services.map(\.isRunning) == [true, false, false, true])
        var frontend = FrontendObservation(name: "fe1")
        frontend.services = services
        #expect(!frontend.allServicesRunning && frontend.stoppedServices == ["nginx", "opscode-erchef"])
    }

    @Test func noServiceLineIsUnreadableNotHealthy() {
        #expect(throws: ParseError.self) { try FrontendServices.parse("") }
        #expect(!FrontendObservation(name: "fe1").allServicesRunning, "unread is not running")
    }

    @Test func servingNeedsEveryUpstreamPong() throws {
        // Chef's documented failure sample (chef/chef-server issue 1895), and its healthy one (issue 2172).
        let failing = #"{"status":"fail","upstreams":{"chef_solr":"fail","chef_sql":"pong","oc_chef_authz":"pong"}}"#
        let healthy =
            #"{"status":"pong","upstreams":{"chef_elasticsearch":"pong","chef_sql":"pong","oc_chef_authz":"pong"},"keygen":{"keys":10}}"#
        var frontend = FrontendObservation(name: "fe1")
        frontend.status = try FrontendStatusBody.status(failing)
        frontend.upstreams = FrontendStatusBody.upstreams(failing)
        #expect(!frontend.serving && frontend.statusText == "fail (chef_solr fail)")
        frontend.status = try FrontendStatusBody.status(healthy)
        frontend.upstreams = FrontendStatusBody.upstreams(healthy)
        #expect(frontend.serving && frontend.statusText == "pong")
    }

    @Test func theFrontendManifestNamesItsPathWhenUnreadable() {
        #expect(throws: ParseError.self) {
            try VersionManifest.buildVersion("{}", path: "/opt/opscode/version-manifest.json")
        }
        #expect((try? VersionManifest.buildVersion(#"{"build_version":"15.9.38"}"#)) == "15.9.38")
    }
}
