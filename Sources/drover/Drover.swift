import ArgumentParser

@main
struct Drover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drover", abstract: "x", version: "0.1.0")
}
