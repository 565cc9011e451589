import DroverSSH
import Foundation
import Testing

@testable import DroverEngine

/// The redactor on the forms Chef nodes print secrets in, and on long lines (linear in their length).
@Suite("redaction of secrets", .timeLimit(.minutes(1)))
struct RedactorTests {
    static let secret = "hunter2-Zq9"

    @Test(
        "a secret's value is masked, the text around it kept",
        arguments: [
            (#"{"db_superuser_password":"§","port":5432}"#, #"{"db_superuser_password":"[REDACTED]","port":5432}"#),
            (#"  "replication_password": "§","#, #"  "replication_password": "[REDACTED]","#),
            ("db_password: \"§\"", "db_password: \"[REDACTED]\""),
            ("db_password: '§'", "db_password: '[REDACTED]'"),
            ("api_token=§", "api_token=[REDACTED]"),
            ("password: §", "password: [REDACTED]"),
            ("DROVER_SSH_PASSPHRASE=§ rest", "DROVER_SSH_PASSPHRASE=[REDACTED] rest"),
            ("chef-backend-ctl join-cluster --password § -y", "chef-backend-ctl join-cluster --password [REDACTED] -y"),
            ("run --db-pass=§", "run --db-pass=[REDACTED]"),
            ("postgres://opscode:§@10.0.0.1:5432/db", "postgres://opscode:[REDACTED]@10.0.0.1:5432/db"),
            ("{db_pass,\"§\"},", "{db_pass,\"[REDACTED]\"},"),
            ("node['secret_access_key'] = \"§\"", "node['secret_access_key'] = \"[REDACTED]\""),
            ("postgresql.db_superuser_password '§'", "postgresql.db_superuser_password '[REDACTED]'"),
            (":superuser_key => \"§\"", ":superuser_key => \"[REDACTED]\""),
            (#"{"line":"db_password: \"§\" here"}"#, #"{"line":"db_password: \"[REDACTED]\" here"}"#),
            (#"{"token": 42}"#, #"{"token": "[REDACTED]"}"#),
            // A value ending in an escaped backslash ends at its quote; the rest of the JSON is kept.
            (#"{"db_password":"C:\\","user":"x"}"#, #"{"db_password":"[REDACTED]","user":"x"}"#),
        ])
    func masked(_ input: String, _ expected: String) {
        let text = input.replacingOccurrences(of: "§", with: Self.secret)
        #expect(Redactor().redact(text) == expected.replacingOccurrences(of: "§", with: Self.secret))
    }

    @Test(
        "text that names no secret's value is left alone",
        arguments: [
            "the password is wrong", "host_key_checking: strict", "password:", "secrets:\n  etcd: {",
            "[OK] all checks passed.",
            "https://example.com/path", "ssh://user@host", "Token", "http://host:8080/x",
        ])
    func untouched(_ text: String) {
        #expect(Redactor().redact(text) == text)
    }

    @Test func privateKeysAreMaskedWholeOnOneLineOrMany() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----"
        #expect(Redactor().redact("key:\n\(pem)\nafter") == "key:\n[REDACTED]\nafter")
        let escaped = pem.replacingOccurrences(of: "\n", with: "\\n")
        let json = #"{"pivotal":"\#(escaped)\n","x":1}"#
        let redacted = Redactor().redact(json)
        #expect(redacted == #"{"pivotal":"[REDACTED]\n","x":1}"#)
        #expect((try? JSONSerialization.jsonObject(with: Data(redacted.utf8))) != nil, "still JSON")
        #expect(Redactor().redact("-----BEGIN PRIVATE KEY-----\nMIIE") == "[REDACTED]", "cut: to its end")
        // Printed a line at a time: the lines between the markers are masked by the stream's state.
        let state = Redactor.StreamState()
        let lines = pem.split(separator: "\n").map(String.init) + ["done"]
        let out = lines.map { state.redact($0, stream: "be1 stdout", with: Redactor()) }
        #expect(out == ["[REDACTED]", "[REDACTED]", "[REDACTED]", "[REDACTED]", "done"])
        #expect(!Redactor.opensPrivateKey("-----BEGIN CERTIFICATE-----"))
    }

    @Test func knownValuesAreMaskedAnywhere() {
        #expect(Redactor(secrets: [Self.secret]).redact("x\(Self.secret)y") == "x[REDACTED]y")
    }

    /// Lines of megabytes, made to defeat a backtracking matcher: linear, so they finish within the limit.
    @Test(arguments: [
        "a", "password", "_key", "p", "-", ":", "://a:", "-----BEGIN ", "-----BEGIN", "a-----BEGIN", "token={",
        "password=[", "token=\"[REDACTED]", "x\\\"",
    ])
    func longLinesAreLinear(_ unit: String) {
        let line = String(repeating: unit, count: 2_000_000 / unit.count)
        let redacted = Redactor().redact(line)
        #expect(redacted.utf8.count <= line.utf8.count + 16)
    }
}

/// Placeholders are filled in one pass: a value is never read again as a template.
@Suite("templates")
struct TemplateTests {
    @Test func aValueIsNeverExpandedAgain() {
        let rendered = Template.render(
            "echo {{a}} {{ b }} {{missing}}", values: ["a": "x{{b}}$(id)", "b": "'; rm -rf / #"],
            quote: ShellQuote.quote)
        #expect(rendered == "echo 'x{{b}}$(id)' ''\\''; rm -rf / #' ''")
    }

    @Test func textWithoutPlaceholdersIsKept() {
        #expect(Template.render("a {{ b", values: [:], quote: { $0 }) == "a {{ b")
        #expect(Template.render("}} {{x}}}", values: ["x": "1"], quote: { $0 }) == "}} 1}")
    }
}
