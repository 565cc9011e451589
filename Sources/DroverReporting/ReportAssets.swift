/// The HTML report's style sheet and static markup: the files of `Assets/`, compiled in at build time (the
/// EmbedReportAssets plugin), so the report needs no file beside the binary.
enum ReportAssets {
    /// The text of `Assets/NAME`; a name not there is a build mistake, caught by the report's tests.
    static func text(_ name: String) -> String {
        ReportAssetFiles.files.first { $0.name == name }?.text ?? ""
    }
}
