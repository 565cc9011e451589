/// A random word, new in each drover process, that ends the marker lines Drover's node scripts print: what a
/// command prints cannot forge one (it would have to guess it).
public enum OutputNonce {
    public static let value: String = {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined()
    }()
}
