import DroverInventory
import DroverTopologies
import Testing

@testable import DroverEngine

/// `Playbook.parse` on its own: what a valid playbook becomes, and for each mistake the file, line, key and
/// a message that names the value and what is allowed.
@Suite("playbooks: parsing and validation")
struct PlaybookParseTests {
    static let file = "/playbooks/example.yml"

    @Test func everyBuiltInPlaybookParses() throws {
        let playbooks = try PlaybookLibrary(topologies: .drover).builtIn()
        #expect(playbooks.count >= 10, "\(playbooks.map(\.name))")
        for playbook in playbooks {
            #expect(!playbook.steps.isEmpty && !playbook.description.isEmpty, "\(playbook.name)")
        }
        let upgrade = try #require(playbooks.first { $0.name == "upgrade" })
        #expect(upgrade.preflight == "upgrade" && upgrade.topology == .chefBackend)
        let follower = try #require(upgrade.steps.first { $0.name == "upgrade-follower" })
        #expect(follower.target == .role("each-follower") && follower.skipIf == "at-target-version")
        #expect(
            follower.actions == [
                .install("package"), .run(template: "chef-backend-ctl upgrade"),
                .wait(predicate: "rejoined", timeout: .named("rejoin")),
            ])
    }

    @Test func aValidPlaybookBecomesItsStepsInOrder() throws {
        let text = """
            name: example
            description: Two steps.
            preflight: basic
            parameters:
              - name: replacement
                kind: node
                required: true
            steps:
              - name: first
                target: leader
                run: chef-backend-ctl status
              - name: second
                description: Several actions.
                target: node:be2
                repeatable: true
                actions:
                  - confirm: This changes {{node}}.
                  - run: echo {{params.replacement}} {{node.host}}
                    again: true
                  - wait: healthy
                    timeout: 90s
                  - manual: Check the load balancer.
            """
        let playbook = try Playbook.parse(text, file: Self.file, topologies: .drover)
        #expect(
            playbook.name == "example" && playbook.preflight == "basic"
                && playbook.parameters.map(\.name) == ["replacement"])
        #expect(playbook.steps.map(\.name) == ["first", "second"])
        #expect(playbook.steps[0].description == "first", "a step without a description is described by its name")
        #expect(playbook.steps[0].actions == [.run(template: "chef-backend-ctl status")] && playbook.steps[0].line == 9)
        let second = playbook.steps[1]
        #expect(second.target == .node("be2") && second.repeatable && second.line == 12)
        #expect(second.again == [2] && playbook.steps[0].again.isEmpty, "again: true marks its action, numbered from 1")
        #expect(
            second.actions.count == 4 && second.actions[2] == .wait(predicate: "healthy", timeout: .fixed(.seconds(90)))
        )
        #expect(playbook.needsConfirmation && playbook.hasManualSteps)
    }

    @Test(
        "each mistake names the file, line and key, and what is allowed",
        arguments: [
            ("name: x\nsteps:\n  - name: a\n    run: true\n", 1, nil, "missing required key 'description'"),
            ("name: x\ndescription: d\n", 1, nil, "missing required key 'steps'"),
            ("name: x\ndescription: d\ncolour: red\nsteps:\n  - name: a\n    run: true\n", 3, "colour", "unknown key"),
            (
                "name: x\ndescription: d\ntopology: k8s\nsteps:\n  - name: a\n    run: true\n", 3, "topology",
                "unknown topology 'k8s'"
            ),
            (
                "name: x\ndescription: d\npreflight: fast\nsteps:\n  - name: a\n    run: true\n", 3, "preflight",
                "unknown pre-flight set 'fast'"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    target: primary\n    run: true\n", 5,
                "steps[0].target",
                "'primary' is not a chef-backend target"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    run: true\n  - name: a\n    run: true\n", 6,
                "steps[1].name",
                "duplicate step name 'a'"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    skip_if: sometimes\n    run: true\n", 5,
                "steps[0].skip_if",
                "unknown guard 'sometimes'"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    actions:\n      - wait: sunny\n", 6,
                "steps[0].actions[0].wait",
                "unknown chef-backend predicate 'sunny'"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    actions:\n      - wait: rejoined\n        timeout: soon\n",
                7, "steps[0].actions[0].timeout", "'soon' is neither a duration nor one of"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    run: echo {{nobody}}\n", 5, "steps[0].run",
                "unknown placeholder {{nobody}}"
            ),
            ("name: x\ndescription: d\nsteps:\n  - name: a\n", 4, "steps[0]", "step 'a' has no run or actions"),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    require: [':']\n    run: echo\n", 5,
                "steps[0].require",
                "unknown chef-backend condition ':'"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    require: ['']\n    run: echo\n", 5,
                "steps[0].require",
                "unknown chef-backend condition ''"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    actions:\n      - install: everything\n", 6,
                "steps[0].actions[0].install",
                "only 'install: package' and 'install: frontend-package' are supported"
            ),
            (
                "name: x\ndescription: d\ntopology: drbd-pair\nsteps:\n  - name: a\n    skip_if: at-target-version\n    run: echo\n",
                6, "steps[0].skip_if", "drbd-pair playbooks take no skip_if"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    skip_if: sunny\n    run: echo\n", 5,
                "steps[0].skip_if",
                "unknown guard 'sunny'; known: at-target-version, elasticsearch-upgraded"
            ),
            (
                "name: x\ndescription: d\ntopology: drbd-pair\nsteps:\n  - name: a\n    actions:\n      - install: package\n",
                7, "steps[0].actions[0].install", "drbd-pair playbooks install nothing"
            ),
            (
                "name: x\ndescription: d\nsteps:\n  - name: a\n    actions:\n      - wait: rejoined\n        again: true\n",
                7, "steps[0].actions[0].again", "again: true is for a run: action"
            ),
        ] as [(String, Int, String?, String)])
    func mistakes(text: String, line: Int, key: String?, message: String) throws {
        let error = try #require(throws: InputError.self) {
            try Playbook.parse(text, file: Self.file, topologies: .drover)
        }
        #expect(error.file == Self.file)
        #expect(error.line == line, "\(error.localizedDescription)")
        #expect(error.key == key, "\(error.localizedDescription)")
        #expect(error.message.contains(message), "\(error.localizedDescription)")
    }
}
