//! The `vlmcs-audit` command: flags, progress and output are the binary's business; the
//! pipeline is the library's.

mod cli;

fn main() {
    std::process::exit(cli::run(std::env::args_os()));
}
