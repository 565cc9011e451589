import Foundation

/// `rpm` and `yum`.
extension Invocation {
    func rpm(_ arguments: [String]) throws -> Int32 {
        if arguments == ["-q", "chef-backend"] {
            guard let version = try installedFull() else {
                out("package chef-backend is not installed\n")
                return 1
            }
            out("chef-backend-\(version).el7.x86_64\n")
            return 0
        }
        if arguments.count == 2, ["-Uvh", "-ivh", "-U", "-i"].contains(arguments[0]) {
            return try install(arguments[1], format: "rpm")
        }
        err("rpm: only 'rpm -q chef-backend' and 'rpm -Uvh FILE.rpm' are simulated\n")
        return 1
    }

    func yum(_ arguments: [String]) throws -> Int32 {
        let files = arguments.filter { $0.hasSuffix(".rpm") }
        guard arguments.first == "install", files.count == 1 else {
            err("yum: only 'yum install -y FILE.rpm' is simulated\n")
            return 1
        }
        return try install(files[0], format: "rpm")
    }
}
