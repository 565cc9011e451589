import DroverSSH
import DroverTestSupport
import Foundation
import InMemoryLogging
import Logging
import Testing

@Suite("SSH against real OpenSSH servers", needsSSHD, .timeLimit(.minutes(3 * TestTime.factor)))
struct SSHClientTests {
    // MARK: 1. Connecting

    @Test func runsCommandsOverOneSession() async throws {
        try await withSSHServer(SSHServerConfiguration(environment: ["DROVER_NODE": "be1"])) { server in
            let client = try await connect(server)
            let first = try await client.run("echo out; echo err >&2; echo $DROVER_NODE")
            #expect(first.stdoutText == "out\nbe1\n")
            #expect(first.stderrText == "err\n")
            #expect(first.succeeded)
            // Reused session: the same connection serves the second command.
            let second = try await client.run("echo $SSH_CONNECTION")
            let third = try await client.run("echo $SSH_CONNECTION")
            #expect(second.stdoutText == third.stdoutText)
            await client.close()
            await #expect(throws: SSHError.closed(host: server.address, port: server.port)) {
                _ = try await client.run("true")
            }
        }
    }

    @Test func connectsByHostNameAndIPv6() async throws {
        try await withSSHServer(SSHServerConfiguration(address: "::1")) { server in
            let options = try testOptions(for: server)
            let client = try await SSHClient.connect(to: SSHEndpoint(host: "::1", port: server.port), options: options)
            #expect(try await client.run("echo v6").stdoutText == "v6\n")
        }
        try await withSSHServer(SSHServerConfiguration(port: Int.random(in: 30000...39999), address: "127.0.0.1")) {
            server in
            var options = try testOptions(for: server)
            try "[localhost]:\(server.port) \(server.hostPublicKeys[0])\n".write(
                toFile: options.knownHostsFile, atomically: true, encoding: .utf8)
            options.hostKeyPolicy = .strict
            let client = try await SSHClient.connect(
                to: SSHEndpoint(host: "localhost", port: server.port), options: options)
            #expect(try await client.run("echo name").stdoutText == "name\n")
        }
    }

    @Test func silentPeerTimesOutInBoundedTime() async throws {
        let listener = try BlackholeListener()
        defer { listener.close() }
        var options = SSHOptions(
            identityFiles: [], agentSocket: nil, knownHostsFile: "/dev/null",
            connectTimeout: .seconds(2), sessionTimeout: .seconds(1))
        options.keepaliveInterval = nil
        let started = ContinuousClock.now
        let error = await expectSSHError {
            _ = try await SSHClient.connect(
                to: SSHEndpoint(host: listener.address, port: listener.port), options: options)
        }
        #expect(error == .handshakeTimedOut(host: listener.address, port: listener.port, seconds: 1))
        #expect(ContinuousClock.now - started < .seconds(10), "bounded by the session timeout, not forever")
    }

    @Test func refusedConnectionNamesHostAndPort() async throws {
        let address = LoopbackAddresses.next(port: 2222)
        let error = await expectSSHError {
            _ = try await SSHClient.connect(
                to: SSHEndpoint(host: address, port: 2222),
                options: SSHOptions(identityFiles: [], agentSocket: nil, knownHostsFile: "/dev/null"))
        }
        guard case .connectionFailed(let host, let port, let reason) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(host == address && port == 2222)
        #expect(reason.contains("refused"))
        #expect(error?.localizedDescription.contains("\(address):2222") == true)
    }

    @Test func unresolvableHostIsReported() async throws {
        let error = await expectSSHError {
            _ = try await SSHClient.connect(
                to: SSHEndpoint(host: "no-such-host.invalid", port: 22),
                options: SSHOptions(identityFiles: [], agentSocket: nil, knownHostsFile: "/dev/null"))
        }
        guard case .resolutionFailed(host: "no-such-host.invalid", port: 22, _) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
    }

    // MARK: 2. Host keys

    @Test func unknownHostIsRefusedWithFingerprintAndLine() async throws {
        try await withSSHServer { server in
            var options = try testOptions(for: server)
            options.knownHostsFile = try temporaryDirectory("kh") + "/known_hosts"
            let error = await expectSSHError { _ = try await connect(server, options) }
            guard case .hostKeyUnknown(_, _, let keyType, let fingerprint, _, let line) = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(keyType == "ssh-ed25519", "ed25519 is preferred for unknown hosts")
            #expect(fingerprint.hasPrefix("SHA256:"))
            #expect(line == server.knownHostsLines(types: ["ssh-ed25519"])[0])
            #expect(error?.localizedDescription.contains(line) == true)
            #expect(!server.log.contains("Accepted publickey"), "nothing authenticates before the key is trusted")
        }
    }

    @Test func changedHostKeyIsRefusedAndNothingRuns() async throws {
        try await withSSHServers([SSHServerConfiguration(), SSHServerConfiguration()]) { servers in
            // known_hosts claims server 0's address has server 1's keys.
            let path = try temporaryDirectory("kh") + "/known_hosts"
            let lines = servers[1].hostPublicKeys.map {
                "\(KnownHosts.hostField(host: servers[0].address, port: servers[0].port)) \($0)"
            }
            try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
            for policy in [HostKeyPolicy.strict, .acceptNew] {
                var options = try testOptions(for: servers[0])
                options.knownHostsFile = path
                options.hostKeyPolicy = policy
                let error = await expectSSHError { _ = try await connect(servers[0], options) }
                guard case .hostKeyChanged(_, _, _, let fingerprint, let file, let line) = error else {
                    Issue.record("unexpected \(String(describing: error))")
                    continue
                }
                #expect(file == path && line == 1 && fingerprint.hasPrefix("SHA256:"))
                #expect(error?.localizedDescription.contains("ssh-keygen -R") == true)
            }
            #expect(!servers[0].log.contains("Accepted publickey"), "no authentication, so no command, happened")
            #expect(
                try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 2,
                "accept-new never rewrites a changed key")
        }
    }

    @Test func hashedEntriesMatch() async throws {
        try await withSSHServer { server in
            var options = try testOptions(for: server)
            let hashed = try Processes.run("/usr/bin/ssh-keygen", ["-H", "-f", options.knownHostsFile])
            #expect(hashed.status == 0)
            let contents = try String(contentsOfFile: options.knownHostsFile, encoding: .utf8)
            #expect(contents.hasPrefix("|1|") && !contents.contains(server.address))
            options.hostKeyPolicy = .strict
            let client = try await connect(server, options)
            #expect(try await client.run("true").succeeded)
        }
    }

    @Test("a host known by one key type only is matched", arguments: ["ssh-ed25519", "ecdsa-sha2-nistp256"])
    func prefersRecordedKeyType(type: String) async throws {
        try await withSSHServer { server in
            var options = try testOptions(for: server)
            options.knownHostsFile = try server.writeKnownHosts(types: [type])
            let client = try await connect(server, options)
            #expect(try await client.run("true").succeeded)
        }
    }

    @Test func acceptNewAppendsThenStrictAccepts() async throws {
        try await withSSHServer { server in
            var options = try testOptions(for: server)
            options.knownHostsFile = try temporaryDirectory("kh") + "/known_hosts"
            options.hostKeyPolicy = .acceptNew
            let logs = InMemoryLogHandler()
            let first = try await connect(server, options, logger: Logger(label: "test") { _ in logs })
            #expect(try await first.run("true").succeeded)
            let recorded = try String(contentsOfFile: options.knownHostsFile, encoding: .utf8)
            #expect(recorded == server.knownHostsLines(types: ["ssh-ed25519"])[0] + "\n")
            #expect(
                logs.entries.contains {
                    $0.level == .warning && $0.message.description.contains("recorded the new host key")
                }, "said at the console's level")
            options.hostKeyPolicy = .strict
            let second = try await connect(server, options)
            #expect(try await second.run("true").succeeded)
        }
    }

    @Test func offWarnsEveryTime() async throws {
        try await withSSHServer { server in
            var options = try testOptions(for: server)
            options.knownHostsFile = "/nonexistent/known_hosts"
            options.hostKeyPolicy = .off
            let logs = InMemoryLogHandler()
            let logger = Logger(label: "test") { _ in logs }
            for _ in 0..<2 { _ = try await connect(server, options, logger: logger) }
            let warnings = logs.entries.filter {
                $0.level == .warning && $0.message.description.contains("host key checking is off")
            }
            #expect(warnings.count == 2)
        }
    }

    // MARK: 3. Authentication

    @Test func agentAuthentication() async throws {
        let keys = try TestKeys.shared()
        let agent = try SSHAgent()
        defer { agent.stop() }
        try agent.add(keys.ed25519.privateKey)
        try await withSSHServer { server in
            var options = try testOptions(for: server)
            options.identityFiles = []
            options.agentSocket = agent.socketPath
            let client = try await connect(server, options)
            #expect(try await client.run("true").succeeded)
            #expect(server.log.contains("Accepted publickey"))
        }
    }

    /// The server authorizes only the ed25519 key; the RSA key is offered with rsa-sha2-512, rsa-sha2-256 and
    /// ssh-rsa from the agent, and its file (the same key) is not offered again.
    @Test func failureListsEveryMethodAndTheRSAAlgorithmsTried() async throws {
        let keys = try TestKeys.shared()
        let agent = try SSHAgent()
        defer { agent.stop() }
        try agent.add(keys.rsa.privateKey)
        let stranger = try temporaryDirectory("stranger") + "/id_ed25519"
        _ = try Processes.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger])
        let configuration = SSHServerConfiguration(
            authorizedKeys: [keys.ed25519.publicKey])
        try await withSSHServer(configuration) { server in
            var options = try testOptions(for: server)
            options.agentSocket = agent.socketPath
            options.identityFiles = ["/nonexistent/id_ed25519", keys.rsa.privateKey, stranger]
            let error = await expectSSHError { _ = try await connect(server, options) }
            guard case .authenticationFailed(_, _, let user, let attempts) = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(user == UserAccount.name)
            #expect(attempts.count == 4)
            #expect(attempts[0].method.hasPrefix("ssh-agent key") && attempts[0].reason.contains("rsa-sha2-512"))
            #expect(attempts[1].reason == "no such file")
            #expect(attempts[2].reason.contains("the same RSA key as ssh-agent's"), "\(attempts[2])")
            #expect(attempts[3].reason.contains("authorized_keys"))
            #expect(error?.localizedDescription.contains(stranger) == true)
        }
    }

    @Test func ecdsaKeyAuthenticates() async throws {
        let keys = try TestKeys.shared()
        try await withSSHServer { server in
            let client = try await connect(server, try testOptions(for: server, identity: keys.ecdsa.privateKey))
            #expect(try await client.run("true").succeeded)
        }
    }

    // MARK: 4. Commands

    @Test("exit statuses", arguments: [0, 1, 3, 255])
    func exitStatus(code: Int32) async throws {
        try await withSSHServer { server in
            let result = try await connect(server).run("echo before; exit \(code)")
            #expect(result.exitStatus == code)
            #expect(result.exitSignal == nil)
            #expect(result.stdoutText == "before\n")
        }
    }

    @Test func killedBySignal() async throws {
        try await withSSHServer { server in
            let result = try await connect(server).run("kill -TERM $$")
            #expect(result.exitSignal == "TERM")
            #expect(!result.succeeded)
        }
    }

    @Test func nonASCIICommand() async throws {
        try await withSSHServer { server in
            let text = "héllo wörld ✓ 日本"
            let result = try await connect(server).run("printf '%s' \(ShellQuote.quote(text)); echo ' — done'")
            #expect(result.stdoutText == text + " — done\n")
        }
    }

    @Test func megabytesOnBothStreamsAtOnce() async throws {
        try await withSSHServer { server in
            let size = 5 * 1024 * 1024
            let command = "head -c \(size) /dev/zero | tr '\\0' a >&2 & head -c \(size) /dev/zero | tr '\\0' b; wait"
            let result = try await connect(server).run(command, timeout: .seconds(60))
            #expect(result.stdout.count == size)
            #expect(result.stderr.count == size)
            #expect(result.stdout.allSatisfy { $0 == UInt8(ascii: "b") })
            #expect(result.stderr.allSatisfy { $0 == UInt8(ascii: "a") })
        }
    }

    @Test func streamsLinesAsTheyArrive() async throws {
        try await withSSHServer { server in
            // The command goes on only once the client has received its first line (the handler creates the
            // flag file): without streaming it could never see the flag. No timing is assumed.
            let flag = try temporaryDirectory("stream") + "/first-line-seen"
            let recorder = LineRecorder()
            let handler = recorder.handler
            let client = try await connect(server)
            let command =
                "echo one; i=0; while [ ! -e \(flag) ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
                + "[ -e \(flag) ] && echo two >&2; printf three"
            let result = try await client.run(command, timeout: .seconds(60)) { line in
                if line.text == "one" { FileManager.default.createFile(atPath: flag, contents: nil) }
                handler(line)
            }
            #expect(
                recorder.lines.map(\.0) == [
                    OutputLine(stream: .stdout, text: "one"), OutputLine(stream: .stderr, text: "two"),
                    OutputLine(stream: .stdout, text: "three"),
                ], "the first line arrived while the command ran")
            #expect(result.stdoutText == "one\nthree")
        }
    }

    @Test func commandTimeoutClosesChannelAndSessionStaysUsable() async throws {
        try await withSSHServer { server in
            let client = try await connect(server)
            let started = ContinuousClock.now
            let error = await expectSSHError { _ = try await client.run("sleep 300", timeout: .seconds(1)) }
            guard case .commandTimedOut(_, _, let command, let seconds) = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(command == "sleep 300" && seconds == 1)
            #expect(ContinuousClock.now - started < .seconds(60), "returned long before the command would have ended")
            #expect(try await client.run("echo still here").stdoutText == "still here\n")
        }
    }

    @Test func cancellingTheTaskClosesTheChannel() async throws {
        try await withSSHServer { server in
            let client = try await connect(server)
            let task = Task { try await client.run("sleep 300") }
            try await Task.sleep(for: .milliseconds(500))
            let started = ContinuousClock.now
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            #expect(ContinuousClock.now - started < .seconds(60), "returned long before the command would have ended")
            #expect(try await client.run("echo next").stdoutText == "next\n")
        }
    }

    // MARK: 5. Keepalives

    @Test func keepalivesDuringLongCommands() async throws {
        try await withSSHServer(SSHServerConfiguration(logLevel: "DEBUG1")) { server in
            var options = try testOptions(for: server)
            options.keepaliveInterval = .seconds(2)
            let client = try await connect(server, options)
            #expect(try await client.run("sleep 5").succeeded)
            let requests = server.log.components(separatedBy: "keepalive@libssh2.org").count - 1
            #expect(requests >= 1, "sshd saw keepalive requests while the command was quiet")
        }
    }

    @Test func aQuietConnectionThatAnswersIsNotLost() async throws {
        try await withSSHServer(SSHServerConfiguration()) { server in
            var options = try testOptions(for: server)
            options.keepaliveInterval = .seconds(1)
            options.keepaliveCountMax = 2
            let client = try await connect(server, options)
            // Far longer than the limit (2 keepalives; libssh2 sends one every 2 s at most): answered, not lost.
            #expect(try await client.run("sleep 9").succeeded, "the server answered every keepalive")
        }
    }

    @Test func aFrozenConnectionIsLostOnceTheKeepalivesGoUnanswered() async throws {
        try await withSSHServer(SSHServerConfiguration()) { server in
            var options = try testOptions(for: server)
            options.keepaliveInterval = .seconds(1)
            options.keepaliveCountMax = 2
            let client = try await connect(server, options)
            let running = Task { try await client.run("sleep 60") }
            try await Task.sleep(for: .milliseconds(500))
            let frozen = connectionProcesses(of: server)
            #expect(!frozen.isEmpty)
            for pid in frozen { kill(pid, SIGSTOP) }
            defer { for pid in frozen { kill(pid, SIGCONT) } }
            let started = ContinuousClock.now
            let error = await expectSSHError { _ = try await running.value }
            #expect(error?.isConnectionLost == true, "\(String(describing: error))")
            #expect(error?.localizedDescription.contains("went unanswered") == true)
            #expect(ContinuousClock.now - started < .seconds(15), "detected in bounded time, not at the command's end")
            // The session is unusable from then on, and says so.
            let again = await expectSSHError { _ = try await client.run("true") }
            #expect(again?.isConnectionLost == true)
        }
    }

    @Test func aResetConnectionIsLost() async throws {
        try await withSSHServer(SSHServerConfiguration()) { server in
            let client = try await connect(server)
            let running = Task { try await client.run("sleep 60") }
            try await Task.sleep(for: .milliseconds(500))
            for pid in connectionProcesses(of: server) { kill(pid, SIGKILL) }
            let error = await expectSSHError { _ = try await running.value }
            #expect(error?.isConnectionLost == true, "\(String(describing: error))")
        }
    }

    // MARK: 6. Upload

    @Test func uploadReplacesAtomicallyAndVerifiesChecksum() async throws {
        try await withSSHServer { server in
            let directory = try temporaryDirectory("upload")
            let local = directory + "/chef-backend_2.3.16-1_amd64.deb"
            var bytes = [UInt8](repeating: 0, count: 3 * 1024 * 1024 + 17)
            for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 9) }
            _ = FileManager.default.createFile(atPath: local, contents: Data(bytes))
            let remoteDirectory = try temporaryDirectory("remote")
            let remote = remoteDirectory + "/package with space.deb"
            try "old contents".write(toFile: remote, atomically: true, encoding: .utf8)

            let client = try await connect(server)
            let progress = LineRecorderProgress()
            let digest = try await client.upload(file: local, to: remote, progress: progress.handler)
            #expect(digest == (try Digest.sha256Hex(ofFile: local)))
            #expect(FileManager.default.contents(atPath: remote) == Data(bytes))
            #expect(
                progress.values.last == UploadProgress(bytesSent: Int64(bytes.count), totalBytes: Int64(bytes.count)))
            #expect(progress.values.count > 2)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: remoteDirectory)
            #expect(leftovers == ["package with space.deb"], "no temporary file is left behind")
            #expect(try await client.sha256(ofRemoteFile: remote) == digest)
        }
    }

    @Test func uploadIntoMissingDirectoryFailsCleanly() async throws {
        try await withSSHServer { server in
            let local = try temporaryDirectory("upload") + "/f"
            _ = FileManager.default.createFile(atPath: local, contents: Data("x".utf8))
            let client = try await connect(server)
            let error = await expectSSHError { _ = try await client.upload(file: local, to: "/nonexistent-dir/f") }
            guard case .uploadFailed(_, _, "/nonexistent-dir/f", _) = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(try await client.run("true").succeeded)
        }
    }

    // MARK: 7. Concurrency

    @Test func threeHostsInParallel() async throws {
        let configurations = (1...3).map { SSHServerConfiguration(environment: ["DROVER_NODE": "be\($0)"]) }
        try await withSSHServers(configurations) { servers in
            let byEndpoint = Dictionary(
                uniqueKeysWithValues: try servers.map { ($0.endpoint, try testOptions(for: $0)) })
            let connections = await SSHClient.connectAll(servers.map(\.endpoint)) { byEndpoint[$0]! }
            let clients = try servers.map { try connections[$0.endpoint]!.get() }
            let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
                for client in clients {
                    group.addTask { try await client.run("date +%s.%N; sleep 3; echo $DROVER_NODE; date +%s.%N") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let spans = results.map { result -> (Double, Double, String) in
                let lines = result.stdoutText.split(separator: "\n")
                return (Double(lines[0])!, Double(lines[2])!, String(lines[1]))
            }
            #expect(Set(spans.map(\.2)) == ["be1", "be2", "be3"])
            let latestStart = spans.map(\.0).max()!
            let earliestEnd = spans.map(\.1).min()!
            #expect(latestStart < earliestEnd, "all three commands were running at the same time")
        }
    }
}

/// Records upload progress values.
final class LineRecorderProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [UploadProgress] = []
    var handler: @Sendable (UploadProgress) -> Void { { value in self.lock.withLock { self.storage.append(value) } } }
    var values: [UploadProgress] { lock.withLock { storage } }
}

/// Three bcrypt key derivations by libssh2 take seconds each on a busy 2-core machine: once, in a
/// clean-clone CI run, more than the two minutes the suite above then allowed. A suite of its own gives them five.
@Suite("SSH with an encrypted key", needsSSHD, .timeLimit(.minutes(5 * TestTime.factor)))
struct EncryptedKeyTests {
    @Test func encryptedKeyWithPassphrase() async throws {
        let keys = try TestKeys.shared()
        try await withSSHServer { server in
            var options = try testOptions(for: server, identity: keys.encrypted.privateKey)
            setenv("DROVER_TEST_PASSPHRASE_1", TestKeys.passphrase, 1)
            options.passphrase = .environment("DROVER_TEST_PASSPHRASE_1")
            let client = try await connect(server, options)
            #expect(try await client.run("true").succeeded)

            options.passphrase = PassphraseSource { _ in "wrong" }
            let wrong = await expectSSHError { _ = try await connect(server, options) }
            #expect(wrong?.localizedDescription.contains("wrong passphrase") == true)

            options.passphrase = .none
            let missing = await expectSSHError { _ = try await connect(server, options) }
            #expect(missing?.localizedDescription.contains("DROVER_SSH_PASSPHRASE") == true)
        }
    }
}
