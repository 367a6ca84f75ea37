//! The `tcpflow` command: see `tcpflow --help`, and the library for the code map.

fn main() {
    std::process::exit(tcpflow::main_entry());
}
