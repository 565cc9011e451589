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
/// The record is five files (the directory mode 0700, files 0600, under umask 077): `<name>.command`, the
/// command's text, created with noclobber to claim the record; `<name>.out` and `.err`; `<name>.status`,
/// which says `pid N` once the command started and `exit S` once it ended, and is locked by the command's
/// wrapper while it runs, so a follower waits on it without polling; and `<name>.claim`, locked while a
/// follower decides whether to start the command and starts it, so that followers arriving together (a
/// session made again while the lost one still runs its script) start it once. A command that ends within 0.1 s is
/// printed from its files at once; a longer one is followed by `tail -F` until the lock is free. The script
/// starts as few processes as it can (each costs a node a millisecond or two): `flock` three times, `setsid` and a
/// `tail` per stream that printed anything. Needs `setsid` and `flock` (util-linux) and GNU `tail`, as every
/// Chef Backend node has.
public struct NodeCommand: Sendable, Equatable {
    /// Marks the script's own lines on stderr; never counted as the command's output. It ends in this process's
    /// nonce, so a command that prints `##drover-node-command## vanished` cannot pass for the script.
    static let marker = "##drover-node-command##" + OutputNonce.value

    /// The run's records on the node (`PARENT/drover-runs/RUN_ID`); PARENT (the product's own directory,
    /// beside the lock) must exist: the script creates only what is below it.
    public var directory: String
    /// The command's record name: step, node and the action's number in the step.
    public var name: String
    public var command: String

    public init(directory: String, name: String, command: String) {
        self.directory = directory
        self.name = name
        self.command = command
    }

    /// What the script found on the node.
    public enum State: String, Sendable {
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
    public static func recordName(step: String, node: String, action: Int) -> String {
        "\(recordPrefix(step: step, node: node)).\(action)"
    }

    /// What the record names of every action of `step` on `node` begin with (before `.ACTION`).
    public static func recordPrefix(step: String, node: String) -> String {
        func clean(_ text: String) -> String {
            String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        }
        return "\(clean(step)).\(clean(node))"
    }

    /// The script; `retryFailed` starts the command again when its record shows it finished with a non-zero
    /// status (a resumed run re-running a step that failed), keeping the old record beside it.
    func script(seen: Seen = Seen(), retryFailed: Bool = false) -> String {
        Self.script([self], seen: [seen], retryFailed: retryFailed)
    }

    /// One script for consecutive commands of a step on one node (all in the same records directory): each
    /// runs as above once the one before it ended with status 0, so a step's commands cost one SSH command.
    /// From the second on, a command's part of the output begins with a `section N` marker line on stdout and
    /// on stderr (each stream keeps its own order, not the other's); the script exits with the first non-zero
    /// status, or 0. `seen` holds, per command, the lines the workstation already has.
    static func script(_ commands: [NodeCommand], seen: [Seen], retryFailed: Bool = false) -> String {
        let quote = ShellQuote.quote
        precondition(!commands.isEmpty && seen.count == commands.count && Set(commands.map(\.directory)).count == 1)
        // The command runs in a subshell of the wrapper (an `exit` in it ends only the subshell), which then
        // records its status; the wrapper holds the lock (fd 9, the status file, taken before it started)
        // until it ends. Shell built-ins wherever they do: every process started costs the node time.
        let wrapper = #"echo "pid $$" >&9; (eval "$2") < /dev/null >> "$1.out" 2>> "$1.err" 9>&-; echo "exit $?" >&9"#
        var script = """
            umask 077; d=\(quote(commands[0].directory)); m=\(quote(Self.marker))
            p=${d%/*}; p=${p%/*}
            [ -d "$p" ] || { echo "$m unusable $p does not exist" >&2; exit 125; }
            [ ! -L "${d%/*}" ] || { echo "$m unusable ${d%/*} is a symbolic link or not owned by $(id -un)" >&2; exit 125; }
            [ -d "$d" ] || mkdir -p "$d" 2>/dev/null || { echo "$m unusable cannot create $d" >&2; exit 125; }
            for x in "${d%/*}" "$d"; do
              if [ -L "$x" ] || [ ! -O "$x" ]; then echo "$m unusable $x is a symbolic link or not owned by $(id -un)" >&2; exit 125; fi
            done
            launch() {
              exec 9> "$r.status" && flock -x 9 || { echo "$m unusable cannot lock $r.status" >&2; exit 125; }
              setsid sh -c \(quote(wrapper)) drover-node-command "$r" "$c" < /dev/null > /dev/null 2>&1 7>&- &
              exec 9>&-
              echo "$m started" >&2
            }
            status() { a=; b=; s=; { read -r a x; read -r b s; } 2>/dev/null < "$r.status"; }
            one() {
              exec 7>> "$r.claim" && flock -x 7 || { echo "$m unusable cannot lock $r.claim" >&2; exit 125; }
              set -C
              if { printf '%s\\n' "$c" > "$r.command"; } 2>/dev/null; then set +C; launch
              elif set +C; [ ! -f "$r.status" ]; then launch
              elif ! flock -n -s 8 8< "$r.status"; then echo "$m running" >&2
              elif status; [ "$b" = exit ]; then
                if [ \(retryFailed ? 1 : 0) = 1 ] && [ "$s" != 0 ]; then
                  f="$r.failed.$(date +%s%N)"; for x in command out err status; do mv -f "$r.$x" "$f.$x" 2>/dev/null; done
                  printf '%s\\n' "$c" > "$r.command"; launch
                else echo "$m finished" >&2; fi
              elif [ "$a" != pid ]; then launch
              else echo "$m vanished" >&2; exit 125
              fi
              exec 7>&-
              if ! flock -w 0.1 -s 8 8< "$r.status"; then
                flock -s 8 8< "$r.status" & w=$!
                tail -n +$1 -s 1 --pid=$w -F "$r.out" 2>/dev/null & o=$!
                tail -n +$2 -s 1 --pid=$w -F "$r.err" >&2 2>/dev/null & e=$!
                wait $w; touch "$r.out" "$r.err"; wait $o $e
              else
                [ ! -s "$r.out" ] || tail -n +$1 "$r.out"; [ ! -s "$r.err" ] || tail -n +$2 "$r.err" >&2
              fi
              status; [ "$b" = exit ] || { echo "$m vanished" >&2; exit 125; }
              [ "$s" = 0 ] || exit "$s"
            }

            """
        for (index, (command, seen)) in zip(commands, seen).enumerated() {
            if index > 0 { script += "echo \"$m section \(index + 1)\"; echo \"$m section \(index + 1)\" >&2\n" }
            script +=
                "r=\"$d\"/\(quote(command.name)); c=\(quote(command.command)); one \(seen.stdout + 1) \(seen.stderr + 1)\n"
        }
        return script + "exit 0"
    }

    /// A line as it came, or two: a command whose output does not end in a newline has the script's next
    /// marker line glued to its last line (`...last words##drover-node-command## section 2`).
    static func split(_ line: OutputLine) -> [OutputLine] {
        guard let range = line.text.range(of: marker + " "), range.lowerBound > line.text.startIndex else {
            return [line]
        }
        return [
            OutputLine(stream: line.stream, text: String(line.text[..<range.lowerBound])),
            OutputLine(stream: line.stream, text: String(line.text[range.lowerBound...])),
        ]
    }

    /// The command a `section N` marker line starts (from 1; each stream says it), nil for any other line.
    static func section(of line: OutputLine) -> Int? {
        guard line.text.hasPrefix(marker + " section ") else { return nil }
        return Int(line.text.dropFirst(marker.count + " section ".count))
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
