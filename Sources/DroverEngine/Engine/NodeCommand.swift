import DroverSSH
import Foundation

/// A command of a step that runs on its node independently of the SSH session that started it.
///
/// One remote script starts the command (unless its record on the node shows it was started already) in a
/// session of its own (`setsid`), stdin from /dev/null, its stdout, stderr and exit status written to files
/// in its record directory, then follows those files until the command ends and exits with its status. A
/// lost connection, a frozen one or a killed drover ends only the following: the command runs on. Running
/// the same script again re-attaches: a running command is followed from the lines already seen, a finished
/// one gives its recorded output and status, a command that never started is started.
///
/// The record is `<records>/<name>.command`, `.pid`, `.out`, `.err`, `.rc` and `.lock` (the directory mode
/// 0700, files 0600, under umask 077). `.command`, created with noclobber, claims the record; `.lock` is
/// held by the command's wrapper while it runs, so a follower waits on it without polling. A command that ends within 0.1 s is printed from its files at once; a longer one is followed
/// by `tail -F` until the lock is free. Needs `setsid` and `flock` (util-linux) and GNU `tail`, as every
/// Chef Backend node has.
struct NodeCommand: Sendable, Equatable {
    /// Marks the script's own lines on stderr; never counted as the command's output.
    static let marker = "##drover-node-command##"

    /// The run's records on the node (`PARENT/drover-runs/RUN_ID`); PARENT (the product's own directory,
    /// beside the lock) must exist: the script creates only what is below it.
    var directory: String
    /// The command's record name: step, node and the action's number in the step.
    var name: String
    var command: String

    /// What the script found on the node.
    enum State: String, Sendable {
        /// It started the command now.
        case started
        /// The command was already running: the script followed it.
        case running
        /// The command had finished: its recorded output and status were read.
        case finished
        /// The record says the command started but it ended without an exit status (killed, or the node
        /// rebooted): its outcome is unknown.
        case vanished
        /// The record directory could not be used.
        case unusable
    }

    /// How many lines of each stream the workstation already has (a re-attach goes on from there).
    struct Seen: Sendable, Equatable {
        var stdout = 0
        var stderr = 0
    }

    /// The record name for action `action` (from 1) of `step` on `node`: letters, digits, `.`, `_` and `-`.
    static func recordName(step: String, node: String, action: Int) -> String {
        func clean(_ text: String) -> String {
            String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        }
        return "\(clean(step)).\(clean(node)).\(action)"
    }

    /// The script; `retryFailed` starts the command again when its record shows it finished with a non-zero
    /// status (a resumed run re-running a step that failed), keeping the old record beside it.
    func script(seen: Seen = Seen(), retryFailed: Bool = false) -> String {
        let quote = ShellQuote.quote
        // The command runs in a subshell of the wrapper (an `exit` in it ends only the subshell), which then
        // records its status; the wrapper holds the lock (fd 9, taken before it started) until it ends.
        let wrapper = #"echo $$ > "$1.pid"; (eval "$2") < /dev/null >> "$1.out" 2>> "$1.err" 9>&-; echo $? > "$1.rc""#
        return """
            umask 077; d=\(quote(directory)); r="$d"/\(quote(name)); m=\(quote(Self.marker)); c=\(quote(command))
            p=${d%/*}; p=${p%/*}
            [ -d "$p" ] || { echo "$m unusable $p does not exist" >&2; exit 125; }
            [ -d "$d" ] || mkdir -p "$d" 2>/dev/null || { echo "$m unusable cannot create $d" >&2; exit 125; }
            launch() {
              : > "$r.out"; : > "$r.err"
              exec 9> "$r.lock"; flock -x 9 || { echo "$m unusable cannot lock $r.lock" >&2; exit 125; }
              setsid sh -c \(quote(wrapper)) drover-node-command "$r" "$c" < /dev/null > /dev/null 2>&1 &
              exec 9>&-
              echo "$m started" >&2
            }
            if (set -C; printf '%s\\n' "$c" > "$r.command") 2>/dev/null; then launch
            elif ! flock -n -s "$r.lock" true 2>/dev/null; then echo "$m running" >&2
            elif [ -f "$r.rc" ]; then
              read -r s < "$r.rc"
              if [ \(retryFailed ? 1 : 0) = 1 ] && [ "$s" != 0 ]; then
                f="$r.failed.$(date +%s%N)"; for x in command out err rc pid; do mv -f "$r.$x" "$f.$x" 2>/dev/null; done
                printf '%s\\n' "$c" > "$r.command"; launch
              else echo "$m finished" >&2; fi
            elif [ ! -f "$r.pid" ]; then launch
            else echo "$m vanished" >&2; exit 125
            fi
            if ! flock -w 0.1 -s "$r.lock" true 2>/dev/null; then
              flock -s "$r.lock" true & w=$!
              tail -n +\(seen.stdout + 1) -s 1 --pid=$w -F "$r.out" 2>/dev/null & o=$!
              tail -n +\(seen.stderr + 1) -s 1 --pid=$w -F "$r.err" >&2 2>/dev/null & e=$!
              wait $w; touch "$r.out" "$r.err"; wait $o $e
            else
              [ ! -s "$r.out" ] || tail -n +\(seen.stdout + 1) "$r.out"; [ ! -s "$r.err" ] || tail -n +\(seen.stderr + 1) "$r.err" >&2
            fi
            [ -f "$r.rc" ] || { echo "$m vanished" >&2; exit 125; }
            read -r s < "$r.rc"; exit "$s"
            """
    }

    /// The state a marker line reports, nil for any other line.
    static func state(of line: OutputLine) -> State? {
        guard line.stream == .stderr, line.text.hasPrefix(marker + " ") else { return nil }
        let word = line.text.dropFirst(marker.count + 1).prefix { $0 != " " }
        return State(rawValue: String(word))
    }

    /// What an `unusable` marker line says after the word.
    static func detail(of line: OutputLine) -> String {
        let rest = line.text.dropFirst(marker.count + 1).drop { $0 != " " }
        return rest.trimmingCharacters(in: .whitespaces)
    }
}
