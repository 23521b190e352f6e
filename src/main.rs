fn main() {
    std::process::exit(vlmcs_audit::cli::run(std::env::args_os()));
}
